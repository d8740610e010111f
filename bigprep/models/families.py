"""The model families by task: plain names, so the CLI can list them without importing
the models."""

CLASSIFIERS = ("logistic", "svm", "modified-huber", "perceptron", "passive-aggressive",
               "multinomial-nb", "bernoulli-nb", "rbf-svm", "rbf-logistic")
TASK_OF = {**dict.fromkeys(CLASSIFIERS, "classification"), "linear": "regression",
           "kmeans": "cluster"}
MODELS = tuple(TASK_OF)
