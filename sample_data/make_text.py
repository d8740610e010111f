"""Generate a synthetic, partitioned text dataset (English or Chinese) as Parquet files.

Usage::

    python sample_data/make_text.py OUT_DIR --lang en --docs N --files K [--seed S]
                                    [--row-group-docs R] [--quiet]

Columns: ``id`` (int64, 0 .. N-1 in file order), ``title`` (string) and ``body``
(string). Documents are short news-like items made from templates and word lists
written for this script (no real text is used): a topic per document (economy,
city, tech, sports, health, culture, weather), one to a few dozen sentences, names
drawn from a Zipf-distributed space of made-up words so the vocabulary keeps
growing with the corpus as real vocabularies do.

English bodies hold what trips tokenizers: digits (``COVID-19``, ``5G``, ``3.5``,
``24/7``), underscores (``user_id``, ``#open_data``), accents (``café``, ``naïve``,
``São Paulo``, some decomposed as NFD), apostrophes, hyphens, curly quotes, em
dashes, non-breaking spaces, ``m²``; and some documents are null, empty, without any
two-letter word (``"A / B"``), very long, or exact duplicates. Chinese bodies are
sentences of common words and phrases with full-width punctuation, some digits and
Latin letters (``5G``, ``AI``), for ``--tokenizer jieba``.

Documents are made in fixed blocks of ``BLOCK_DOCS``, each from its own seeded
random stream, so the data depend on ``--lang`` and ``--seed`` only: the first N
documents of a bigger corpus are the N-document corpus (``--files`` decides where
files end, ``--row-group-docs`` how they are cut into row groups). Files are written
one row group at a time, so memory stays small whatever the size.
"""

from __future__ import annotations

import argparse
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BLOCK_DOCS = 4096
LANG_CODE = {"en": 1, "zh": 2}
SCHEMA = pa.schema([("id", pa.int64()), ("title", pa.string()), ("body", pa.string())])
COLUMNS = 32  # random draws per sentence, one column per slot name

# --- English word lists ----------------------------------------------------------------

PLACES = [
    "Lisbon", "Zürich", "São Paulo", "Montréal", "Nairobi", "Osaka", "Reykjavík", "Kraków",
    "Málaga", "Bogotá", "Auckland", "Glasgow", "Lagos", "Porto", "Quebec", "Seville",
    "Hamburg", "Tampere", "Valparaíso", "Cádiz", "Durban", "Leeds", "Perth", "Halifax",
    "Gdańsk", "Brno", "Tromsø", "Genève", "Köln", "Córdoba", "Medellín", "Curaçao",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
FIRST_NAMES = [
    "Ana", "José", "Zoë", "Chloé", "Björn", "Mei", "Omar", "Priya", "Lars", "Amara", "Tomás",
    "Ingrid", "Kenji", "Fatima", "Luca", "Nadia", "Pedro", "Sofia", "Yusuf", "Elena", "Marek",
    "Aisha", "Diego", "Hana", "Jonas", "Leila", "Mateo", "Noor", "Oskar", "Renée", "Sam", "Tariq",
    "Ulla", "Víctor", "Wen", "Xavier", "Yara", "Zainab", "Łukasz", "Søren", "Inès",
]
ROLES = [
    "the mayor", "a spokesperson", "the finance minister", "the head coach", "the chief executive",
    "a senior analyst", "the union leader", "local residents", "the lead researcher",
    "the festival director", "a city councillor", "the health minister", "an economist",
    "the chair of the board", "a police spokesperson", "the school principal",
]
TITLES = ["chief economist", "head of research", "chief executive", "a director",
          "the founder", "a senior engineer", "policy adviser", "team captain", "press officer"]
ORGS = [
    "the city council", "the central bank", "the ministry of health", "the port authority",
    "the school board", "the transport agency", "the regional government", "the federation",
    "the statistics office", "the workers' union", "the planning committee", "the university",
    "the chamber of commerce", "the water utility", "the housing authority", "parliament",
]
SOURCES = [
    "official figures", "a report released on Monday", "the statistics office",
    "people familiar with the matter", "a survey of 1,200 households", "preliminary data",
    "a statement on its website", "court documents", "an internal memo seen by reporters",
]
GROUPS = ["families", "small businesses", "commuters", "students", "pensioners", "farmers",
          "tenants", "patients", "young workers", "fans", "taxpayers", "visitors"]
REGIONS = ["districts", "provinces", "neighbourhoods", "counties", "towns", "regions"]
NUM_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "ten", "twelve", "dozens of"]
WHENS = ["next week", "later this month", "after the summer", "in the new year", "on Friday",
         "before the election", "within days", "in the autumn"]
FEELINGS = ["optimistic", "cautious", "excited", "worried", "confident", "realistic",
            "not naïve", "frankly surprised"]
JUDGEMENTS = ["too expensive", "long overdue", "a step backwards", "poorly explained",
              "rushed", "naïve", "unfair to renters", "a good start", "years late"]
RISE_FALL = ["rose", "fell", "climbed", "dropped", "jumped", "slipped", "edged up", "eased"]
SUFFIXES = ["Corp", "Labs", "Group", "Systems", "Holdings", "Energy", "Foods", "Bank",
            "Logistics", "Media", "Analytics", "& Sons"]
MASCOTS = ["United", "Rovers", "City", "Athletic", "Wanderers", "Falcons", "Lions", "Harbour FC"]
DISHES = ["crème brûlée", "jalapeño poppers", "açaí bowls", "pão de queijo", "smørrebrød",
          "crêpes", "piñata cake", "café au lait", "entrées", "purée of squash"]
CODES = ["user_id", "max_retries", "snake_case", "created_at", "api_key", "batch_size",
         "__init__", "is_active", "row_count", "tmp_dir", "feature_flag", "v2_endpoint"]
TAGS = ["#open_data", "#city_news", "@metro_desk", "#data_science", "#match_day",
        "#green_city", "@health_watch", "#budget_2025"]
ADJS = ["new", "major", "local", "regional", "controversial", "long-awaited", "modest",
        "ambitious", "temporary", "revised", "first", "public", "costly", "digital"]

# Per topic: nouns (singular, plural) and verbs (base, past)
TOPICS = {
    "economy": (
        [("budget", "budgets"), ("tariff", "tariffs"), ("interest rate", "interest rates"),
         ("pension plan", "pension plans"), ("tax cut", "tax cuts"), ("loan", "loans"),
         ("merger", "mergers"), ("export", "exports"), ("price", "prices"),
         ("wage deal", "wage deals"), ("bond", "bonds"), ("start-up", "start-ups")],
        [("raise", "raised"), ("cut", "cut"), ("approve", "approved"), ("delay", "delayed"),
         ("review", "reviewed"), ("freeze", "froze")]),
    "city": (
        [("bridge", "bridges"), ("bus lane", "bus lanes"), ("school", "schools"),
         ("park", "parks"), ("housing plan", "housing plans"), ("railway", "railways"),
         ("library", "libraries"), ("tram line", "tram lines"), ("façade", "façades"),
         ("bike path", "bike paths"), ("parking fee", "parking fees"), ("flat", "flats")],
        [("build", "built"), ("close", "closed"), ("reopen", "reopened"), ("expand", "expanded"),
         ("rename", "renamed"), ("repair", "repaired")]),
    "tech": (
        [("app", "apps"), ("data centre", "data centres"), ("chip", "chips"),
         ("software update", "software updates"), ("5G network", "5G networks"),
         ("AI model", "AI models"), ("password", "passwords"), ("server", "servers"),
         ("database", "databases"), ("robot", "robots"), ("satellite", "satellites"),
         ("smartphone", "smartphones")],
        [("launch", "launched"), ("patch", "patched"), ("ship", "shipped"),
         ("retire", "retired"), ("test", "tested"), ("hack", "hacked")]),
    "sports": (
        [("match", "matches"), ("title race", "title races"), ("stadium", "stadiums"),
         ("transfer", "transfers"), ("final", "finals"), ("season", "seasons"),
         ("coach", "coaches"), ("derby", "derbies"), ("marathon", "marathons"),
         ("penalty", "penalties"), ("ticket", "tickets"), ("league", "leagues")],
        [("win", "won"), ("lose", "lost"), ("sign", "signed"), ("host", "hosted"),
         ("cancel", "cancelled"), ("postpone", "postponed")]),
    "health": (
        [("vaccine", "vaccines"), ("hospital", "hospitals"), ("clinic", "clinics"),
         ("waiting list", "waiting lists"), ("COVID-19 booster", "COVID-19 boosters"),
         ("trial", "trials"), ("nurse", "nurses"), ("ambulance", "ambulances"),
         ("diet", "diets"), ("screening", "screenings"), ("drug", "drugs"),
         ("flu season", "flu seasons")],
        [("fund", "funded"), ("trial", "trialled"), ("expand", "expanded"),
         ("recall", "recalled"), ("staff", "staffed"), ("approve", "approved")]),
    "culture": (
        [("festival", "festivals"), ("museum", "museums"), ("café", "cafés"),
         ("exhibition", "exhibitions"), ("concert", "concerts"), ("novel", "novels"),
         ("film", "films"), ("theatre", "theatres"), ("résumé workshop", "résumé workshops"),
         ("gallery", "galleries"), ("opera", "operas"), ("food market", "food markets")],
        [("open", "opened"), ("host", "hosted"), ("premiere", "premiered"),
         ("restore", "restored"), ("stage", "staged"), ("celebrate", "celebrated")]),
    "weather": (
        [("storm", "storms"), ("heatwave", "heatwaves"), ("flood", "floods"),
         ("drought", "droughts"), ("snowfall", "snowfalls"), ("forecast", "forecasts"),
         ("warning", "warnings"), ("wildfire", "wildfires"), ("rainfall", "rainfalls"),
         ("power cut", "power cuts"), ("sea level", "sea levels"), ("frost", "frosts")],
        [("hit", "hit"), ("issue", "issued"), ("lift", "lifted"), ("track", "tracked"),
         ("flood", "flooded"), ("cool", "cooled")]),
}
TOPIC_NAMES = list(TOPICS)
TOPIC_P = np.array([0.2, 0.18, 0.16, 0.16, 0.12, 0.1, 0.08])

COMMON_TEMPLATES = [
    "In {Place}, {org} {verbed} a {adj} {noun} on {weekday}, {role} said.",
    ("{First} {Surname}, {title} at {Company}, said the {noun} could {verb} {num} {nouns2} "
    "by {month}."),
    ("{Nouns} in {Place} {rise_fall} {pct} percent in {month} from a year earlier, "
    "according to {source}."),
    ("“We are {feeling} about the {noun},” said {First} {Surname}, who {verbed} the {adj} "
    "{noun2} in {year}."),
    ("The {adj} {noun} will {verb} {nouns2} across {num_word} {regions}, with costs put at "
    "${money} million."),
    "Critics say the {noun} is {judgement}, but supporters argue it will help {group}.",
    "{Company} shares {rise_fall} {pct} percent after the {noun} was {verbed} by {org}.",
    "Talks between {org} and {org2} over the {noun} are expected to resume {when}.",
    ("About {count} {group} in {Place} signed a petition against the {noun} — {Surname} "
    "called it {judgement}."),
    "It's the {ordinal} {noun} this year, and {role} doesn't expect it to be the last.",
    "{Surname} and {Surname2} {verbed} {num} {nouns} in {Place} between {month} and {month2}.",
    "The {noun} ({count} {nouns} in all) starts at 9:{minute} on {weekday}, {role} said.",
    "Officials in {Place2} {verbed} the {noun} after {source} showed a {pct}% gap.",
    "{Group} have {verbed} {nouns} for {years} years, {First} {Surname} told {Company}.",
]
TOPIC_TEMPLATES = {
    "economy": ["Inflation {rise_fall} to {pct}% in Q{quarter}, the {ordinal} change in a row.",
                "{Company} agreed to buy {Company2} for ${money} million in cash and shares."],
    "city": [("The {noun} near {Place} station gets {count}\u00a0m² of new space and {num} "
             "{nouns}."),
             "Works on the {noun} run 24/7 until {month}, and {group} should expect delays."],
    "tech": ["The update renames the {code} field and sets {code2} to {small} by default.",
             "{Company} said its {noun} now runs on 5G in {num_word} {regions}; see {tag}.",
             "Version {small}.{minute} of the {noun} fixes a bug in {code}, {Surname} wrote."],
    "sports": ["{Team} beat {Team2} {score}-{score2} on {weekday} in front of {count} fans.",
               "{First} {Surname} scored twice in the second half as {Team} won at home.",
               "Tickets for the {noun} sold out in {minute} minutes; follow {tag} for updates."],
    "health": ["A {noun} for COVID-19 and flu opens in {Place} on {weekday}, {role} said.",
               "The trial enrolled {count} patients aged {small}0 to {age} over {years} years."],
    "culture": ["A {adj} café near the old {noun} in {Place} now serves {dish} all day.",
                ("The {noun} shows {num} works by {First} {Surname}, whose naïve style "
                "divided critics."),
                "Tickets for the {noun} cost €{small}0, or €{minute} for students."],
    "weather": ["Up to {small}0 mm of rain could fall on {Place} by {weekday}, forecasters said.",
                ("Temperatures {rise_fall} to {age}°C in {Place2}, the {ordinal} {noun} since "
                "{year}.")],
}
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "tenth"]
HEADLINES = [
    "{Place} {org_short} to {verb} {nouns}",
    "{Company} {verbed} {noun} in {Place}",
    "{Nouns} {rise_fall} {pct}% as {group} wait",
    "BREAKING: {noun} {verbed} in {Place}",
    "{First} {Surname} on the {adj} {noun}",
    "Why {group} in {Place} worry about {nouns}",
]
ORG_SHORTS = ["council", "bank", "ministry", "agency", "union", "university", "board", "court"]
NO_TERMS = ["A / B", "I", "?", "…", "— — —", "a. b. c.", "5 4 3 2 1", "N/A", "x"]

# Made-up words: Zipf-ranked, two or three syllables from these parts.
ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br",
          "dr", "kr", "st", "tr", "ch", "sh"]
VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ea", "ia"]
CODAS = ["", "n", "r", "l", "s", "m"]
SYLLABLES = [o + v + c for o in ONSETS for v in VOWELS for c in CODAS]
S = len(SYLLABLES)


def made_up_word(rank: int) -> str:
    """A pronounceable word for a Zipf rank (two syllables below S**2, three above)."""
    word = SYLLABLES[rank % S] + SYLLABLES[(rank // S) % S]
    if rank >= S * S:
        word += SYLLABLES[(rank // (S * S)) % S]
    return word


# --- Chinese word lists ----------------------------------------------------------------

ZH = {
    "time": ["今天", "昨天", "上周", "本月", "近日", "今年", "去年", "2024年", "第3季度",
             "周一", "周末", "上午", "下午"],
    "place": ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "西安", "南京", "重庆",
              "苏州", "长沙", "青岛", "厦门", "昆明", "天津"],
    "org": ["市政府", "教育局", "卫生部门", "研究团队", "科技公司", "交通部门", "气象台",
            "博物馆", "图书馆", "大学", "医院", "银行", "足球队", "社区中心", "环保组织"],
    "verb": ["发布", "宣布", "推出", "启动", "完成", "提高", "减少", "加强", "支持", "开展",
             "建设", "改善", "调整", "公布", "举办"],
    "noun": ["新政策", "计划", "项目", "报告", "服务", "设施", "比赛", "活动", "数据", "技术",
             "人工智能", "新能源汽车", "高铁", "地铁", "公园", "学校", "医疗保险", "文化节",
             "天气预报", "垃圾分类", "电子支付", "5G网络", "AI助手", "App"],
    "adj": ["重要的", "新的", "大型", "公共", "智能", "免费的", "绿色", "安全的", "便利的"],
    "people": ["市民", "学生", "老人", "游客", "司机", "家长", "专家", "记者", "球迷", "企业"],
    "feel": ["满意", "担心", "期待", "欢迎", "关注", "支持"],
    "surname": ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙"],
    "given": ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "明", "华"],
    "role": ["负责人", "专家", "市长", "教授", "工程师", "医生", "经理", "教练"],
}
ZH_TEMPLATES = [
    "{time}，{place}{org}{verb}了{adj}{noun}。",
    "据{place}{org}介绍，{noun}已经覆盖{count}个社区，{people}普遍表示{feel}。",
    "{role}{surname}{given}说：“我们将继续{verb}{noun}，让{people}更方便。”",
    "{time}{place}的{noun}增长了{pct}%，{people}对此非常{feel}。",
    "{place}计划在{year}年前{verb}{count}个{noun}项目。",
    "不少{people}认为，{adj}{noun}和{noun2}都很重要。",
    "{org}{time}{verb}的{noun}，吸引了{count}多名{people}参加。",
    "{surname}{role}指出，{noun}需要{people}、{org}和{org2}共同努力。",
]
ZH_HEADLINES = ["{place}{verb}{noun}", "{org}{verb}{adj}{noun}", "{people}{feel}{noun}"]


class Slots(dict):
    """Fills a template's slots lazily from one row of random draws."""

    def __init__(self, lang: str, topic: str, draws: np.ndarray, ranks: np.ndarray):
        super().__init__()
        self.lang, self.topic, self.draws, self.ranks = lang, topic, draws, ranks

    def pick(self, seq, column: int):
        return seq[int(self.draws[column]) % len(seq)]

    def __missing__(self, key: str) -> str:
        name = key[0].lower() + key[1:]
        value = (self.english(name) if self.lang == "en" else self.chinese(name))
        if key[0].isupper():
            value = value[:1].upper() + value[1:]
        return value

    def chinese(self, name: str) -> str:
        d = self.draws
        if name in ("count", "pct", "year"):
            return {"count": str(int(d[26]) % 900 + 10), "pct": f"{int(d[27]) % 300 / 10:g}",
                    "year": str(2025 + int(d[28]) % 6)}[name]
        base, column = (name[:-1], 1) if name[-1] == "2" else (name, 0)
        index = sorted(ZH).index(base) * 2 + column
        return self.pick(ZH[base], index)

    def english(self, name: str) -> str:
        d, r = self.draws, self.ranks
        nouns, verbs = TOPICS[self.topic]
        if name in ("noun", "nouns", "noun2", "nouns2"):
            pair = self.pick(nouns, 0 if name in ("noun", "nouns") else 1)
            return pair[1] if name.startswith("nouns") else pair[0]
        if name in ("verb", "verbed"):
            return self.pick(verbs, 2)[1 if name == "verbed" else 0]
        if name in ("surname", "surname2"):
            return made_up_word(int(r[1 if name == "surname2" else 0])).capitalize()
        if name in ("company", "company2"):
            rank = int(r[2 if name == "company" else 1])
            return f"{made_up_word(rank).capitalize()} {self.pick(SUFFIXES, 3 if rank == r[2] else 7)}"
        if name in ("team", "team2"):
            place = self.pick(PLACES, 4 if name == "team" else 5)
            return f"{place} {self.pick(MASCOTS, 6 if name == 'team' else 7)}"
        simple = {
            "place": (PLACES, 8), "place2": (PLACES, 9), "org": (ORGS, 10), "org2": (ORGS, 11),
            "adj": (ADJS, 12), "weekday": (WEEKDAYS, 13), "role": (ROLES, 14),
            "title": (TITLES, 15), "first": (FIRST_NAMES, 16), "month": (MONTHS, 17),
            "month2": (MONTHS, 18), "source": (SOURCES, 19), "group": (GROUPS, 20),
            "regions": (REGIONS, 21), "num_word": (NUM_WORDS, 22), "when": (WHENS, 23),
            "feeling": (FEELINGS, 24), "judgement": (JUDGEMENTS, 25),
            "rise_fall": (RISE_FALL, 26), "ordinal": (ORDINALS, 27), "dish": (DISHES, 28),
            "code": (CODES, 29), "code2": (CODES, 30), "tag": (TAGS, 31),
            "org_short": (ORG_SHORTS, 10),
        }
        if name in simple:
            return self.pick(*simple[name])
        numbers = {
            "num": lambda: str(int(d[0]) % 9 + 2), "count": lambda: f"{int(d[1]) % 4800 + 20:,}",
            "pct": lambda: f"{int(d[2]) % 149 / 10 + 0.1:.1f}", "year": lambda: str(1990 + d[3] % 35),
            "money": lambda: f"{int(d[4]) % 900 + 10}", "minute": lambda: f"{int(d[5]) % 60:02d}",
            "small": lambda: str(int(d[6]) % 9 + 1), "quarter": lambda: str(int(d[7]) % 4 + 1),
            "score": lambda: str(int(d[8]) % 5), "score2": lambda: str(int(d[9]) % 4),
            "age": lambda: str(int(d[10]) % 60 + 18), "years": lambda: str(int(d[11]) % 20 + 2),
        }
        return numbers[name]()


def zipf_ranks(rng: np.random.Generator, shape) -> np.ndarray:
    """Ranks of made-up words: Zipf (a = 1.08), wrapped into a space of 50M words."""
    return (rng.zipf(1.08, shape) - 1) % 50_000_000


def block(lang: str, seed: int, index: int, n: int) -> pa.Table:
    """Documents [index * BLOCK_DOCS, index * BLOCK_DOCS + n) of the stream."""
    rng = np.random.default_rng([seed, LANG_CODE[lang], index])
    if lang == "en":
        sentences = 1 + rng.poisson(2.75, n)
        long = rng.random(n) < 0.02
        sentences[long] = rng.integers(10, 31, long.sum())
        topics = rng.choice(len(TOPIC_NAMES), n, p=TOPIC_P)
    else:
        sentences = 1 + rng.poisson(2.0, n)
        topics = np.zeros(n, dtype=int)
    total = int(sentences.sum()) + n  # one row of draws per sentence and per title
    draws = rng.integers(0, 2**31, (total, COLUMNS), dtype=np.int64)
    ranks = zipf_ranks(rng, (total, 3))
    template_u = rng.random(total)
    kind = rng.random(n)
    nfd = rng.random(n) < 0.01
    titles, bodies = [], []
    row = 0
    for i in range(n):
        topic = TOPIC_NAMES[topics[i]]
        slots = Slots(lang, topic, draws[row], ranks[row])
        heads = HEADLINES if lang == "en" else ZH_HEADLINES
        titles.append(heads[int(template_u[row] * len(heads))].format_map(slots))
        row += 1
        parts = []
        for _ in range(sentences[i]):
            slots = Slots(lang, topic, draws[row], ranks[row])
            if lang == "en":
                u = template_u[row]  # 30% the topic's own templates, 70% common ones
                if u < 0.3:
                    template = TOPIC_TEMPLATES[topic][int(u / 0.3 * len(TOPIC_TEMPLATES[topic]))]
                else:
                    template = COMMON_TEMPLATES[int((u - 0.3) / 0.7 * len(COMMON_TEMPLATES))]
                text = template.format_map(slots)
                parts.append(text[:1].upper() + text[1:])
            else:
                parts.append(ZH_TEMPLATES[int(template_u[row] * len(ZH_TEMPLATES))]
                             .format_map(slots))
            row += 1
        body = (" " if lang == "en" else "").join(parts)
        if nfd[i] and lang == "en":  # accents as base letter + combining mark
            body = unicodedata.normalize("NFD", body)
        bodies.append(body)
    # the awkward ones
    body_arr = np.array(bodies, dtype=object)
    title_arr = np.array(titles, dtype=object)
    body_arr[(kind >= 0.010) & (kind < 0.015)] = ""
    no_terms = (kind >= 0.015) & (kind < 0.018)
    body_arr[no_terms] = [NO_TERMS[j % len(NO_TERMS)] for j in range(no_terms.sum())]
    dup = np.flatnonzero((kind >= 0.018) & (kind < 0.023))
    body_arr[dup] = body_arr[dup // 2]  # an earlier document of the same block
    body_mask = kind < 0.010
    title_mask = (kind >= 0.9) & (kind < 0.904)
    first = index * BLOCK_DOCS
    return pa.table({
        "id": pa.array(np.arange(first, first + n, dtype=np.int64)),
        "title": pa.array(title_arr.tolist(), pa.string(), mask=title_mask),
        "body": pa.array(body_arr.tolist(), pa.string(), mask=body_mask),
    }, schema=SCHEMA)


class DocStream:
    """Hands out the stream's documents in tables of any requested length."""

    def __init__(self, lang: str, seed: int, docs: int):
        self.lang, self.seed, self.docs = lang, seed, docs
        self.next_block = 0
        self.buffer = SCHEMA.empty_table()

    def take(self, n: int) -> pa.Table:
        while self.buffer.num_rows < n:
            start = self.next_block * BLOCK_DOCS
            made = block(self.lang, self.seed, self.next_block,
                         min(BLOCK_DOCS, self.docs - start))
            self.next_block += 1
            self.buffer = pa.concat_tables([self.buffer, made]).combine_chunks()
        out, self.buffer = self.buffer.slice(0, n), self.buffer.slice(n)
        return out


def generate(out_dir: Path, lang: str, docs: int, files: int, seed: int = 0,
             row_group_docs: int = 65_536, quiet: bool = False) -> list[Path]:
    if docs < 1 or files < 1 or row_group_docs < 1:
        raise ValueError("--docs, --files and --row-group-docs must be >= 1")
    if files > docs:
        raise ValueError(f"--files {files} is more than --docs {docs}: a file would be empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    stream = DocStream(lang, seed, docs)
    paths = []
    for i in range(files):
        size = docs // files + (i < docs % files)
        path = out_dir / f"part-{i:05d}.parquet"
        with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
            left = size
            while left:
                n = min(row_group_docs, left)
                writer.write_table(stream.take(n), row_group_size=n)
                left -= n
        paths.append(path)
        if not quiet:
            print(f"{path} {size:,} documents", file=sys.stderr)
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    parser.add_argument("--lang", choices=sorted(LANG_CODE), default="en")
    parser.add_argument("--docs", type=int, required=True, help="documents in all")
    parser.add_argument("--files", type=int, required=True, help="number of Parquet files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--row-group-docs", type=int, default=65_536,
                        help="documents per Parquet row group")
    parser.add_argument("--quiet", "-q", action="store_true")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        generate(args.out_dir, args.lang, args.docs, args.files, args.seed,
                 args.row_group_docs, args.quiet)
    except ValueError as err:
        parser.error(str(err))
    if not args.quiet:
        print(f"{args.docs:,} {args.lang} documents in {args.files} files written to "
              f"{args.out_dir} in {time.perf_counter() - began:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
