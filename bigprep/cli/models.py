"""``bigprep train``, ``predict`` and ``evaluate``."""

from __future__ import annotations

import json

import click

from ..models.families import MODELS
from .common import console, execution_options, names, output_options


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", required=True, metavar="DIR", help="The model folder to write.")
@click.option("--target", metavar="COL", help="The column to predict (not for kmeans).")
@click.option("--model", "model_name", default="logistic", show_default=True,
              type=click.Choice(list(MODELS)), help="The model family.")
@click.option("--task", type=click.Choice(["classification", "regression", "cluster"]),
              help="Checked against --model (linear is regression, kmeans cluster).")
@click.option("--features", metavar="GLOBS", help="Feature columns, e.g. 'num_*,age'. "
              "Default: every column but the target.")
@click.option("--categorical", metavar="COLS", help="Columns to one-hot encode.")
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True,
              help="Passes over the training partitions.")
@click.option("--validation", type=click.FloatRange(0, 0.5), default=0.05, show_default=True,
              help="Share of rows held out (by a hash of the row position) for early stopping.")
@click.option("--penalty", type=click.Choice(["l2", "l1", "elasticnet", "none"]), default="l2",
              show_default=True, help="Regularisation.")
@click.option("--alpha", type=float, default=1e-4, show_default=True,
              help="Regularisation strength.")
@click.option("--l1-ratio", type=float, default=0.15, show_default=True,
              help="Share of L1 in elasticnet.")
@click.option("--class-weight", type=click.Choice(["balanced"]), default=None,
              help="Weigh classes inversely to their frequency.")
@click.option("--kernel-components", type=click.IntRange(min=1), default=500,
              show_default=True, help="Random Fourier features of rbf-* models.")
@click.option("--gamma", type=float, default=None, help="RBF gamma (default 1/n_features).")
@click.option("--clusters", type=click.IntRange(min=2), default=8, show_default=True,
              help="Clusters of kmeans.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the shuffles, the split and the model.")
@click.option("--init-model", metavar="DIR", help="Continue training this saved model.")
@execution_options
def train(inputs, out, target, model_name, task, features, categorical, epochs, validation,
          penalty, alpha, l1_ratio, class_weight, kernel_components, gamma, clusters, seed,
          init_model, chunk_rows, executor, quiet, storage):
    """Train a partial_fit model over partitions, out of core.

    A first pass learns the classes, feature scaling and categorical levels;
    then each epoch visits the chunks in a seeded shuffled order. A checkpoint
    is saved after every epoch; --init-model continues a model on new data.

    \b
    Example:
      bigprep train 'train/*.parquet' --target delayed --model logistic --out model/ \\
          --features 'num_*' --categorical carrier,origin --epochs 5 --validation 0.05
      bigprep train 'train/*.parquet' --target delayed --model svm --penalty elasticnet \\
          --out model/
      bigprep train 'train/*.parquet' --task regression --target arr_delay --model linear \\
          --out model/
    """
    from ..api.models import SGDModel

    log = None if quiet else console().print
    run = {"chunk_rows": chunk_rows, "executor": executor, "storage_options": storage,
           "log": log}
    if init_model:
        model = SGDModel.load(init_model, epochs=epochs, **run)
    else:
        model = SGDModel(model=model_name, target=target, task=task,
                         features=names(features), categorical=names(categorical),
                         epochs=epochs, validation=validation, seed=seed, penalty=penalty,
                         alpha=alpha, l1_ratio=l1_ratio, class_weight=class_weight,
                         kernel_components=kernel_components, gamma=gamma, clusters=clusters,
                         **run)
    model.partial_fit(inputs, checkpoint=out)
    if not quiet:
        console().print(f"model saved: {out} ({len(model.history_)} epochs)")


@click.command()
@click.argument("model_dir")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "-o", required=True, metavar="DIR", help="Output folder.")
@click.option("--keep", metavar="COLS", help="Columns to copy to the output, e.g. id.")
@click.option("--proba", is_flag=True, help="Add proba_CLASS columns.")
@output_options
@execution_options
def predict(model_dir, inputs, out, keep, proba, overwrite, compression, chunk_rows, executor,
            quiet, storage):
    """Write predictions: one Parquet file per input, kept columns + `prediction`.

    \b
    Example:
      bigprep predict model/ 'new/*.parquet' --out predictions/ --keep id --proba
    """
    from ..api.models import SGDModel

    model = SGDModel.load(model_dir, executor=executor, storage_options=storage,
                          chunk_rows=chunk_rows, compression=compression)
    files = model.predict(inputs, out=out, keep=names(keep), proba=proba, overwrite=overwrite)
    if not quiet:
        console().print(f"{sum(f['rows'] for f in files):,} predictions written to {out}")


@click.command()
@click.argument("model_dir")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@execution_options
def evaluate(model_dir, inputs, as_json, chunk_rows, executor, quiet, storage):
    """Metrics of a saved model on labelled partitions, out of core.

    Classification: accuracy, precision, recall, F1, log loss, ROC AUC (binary;
    from a 2**20-bucket score histogram) and the confusion matrix. Regression:
    RMSE, MAE, R².

    \b
    Example:
      bigprep evaluate model/ 'test/*.parquet'
      bigprep evaluate model/ 'test/*.parquet' --json > metrics.json
    """
    from ..api.models import SGDModel

    model = SGDModel.load(model_dir, executor=executor, storage_options=storage,
                          chunk_rows=chunk_rows)
    result = model.score(inputs)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{model_dir} on {result['rows']:,} rows", title_justify="left")
    table.add_column("metric")
    table.add_column("value")
    for name, value in result.items():
        if name not in ("rows", "confusion_matrix"):
            table.add_row(name, "-" if value is None else f"{value:.6g}")
    Console().print(table)
    if "confusion_matrix" in result:
        cm = result["confusion_matrix"]
        Console().print("confusion matrix (rows: true, columns: predicted) "
                        f"{cm['classes']}: {cm['rows_true_columns_predicted']}")
