"""Reference values for the quality measures, from the PyPI implementations.

Reads the cases the Rust test generated (JSON on stdin) and prints, as JSON, what `krippendorff`,
`statsmodels`, `scikit-learn` and `crowd-kit` compute for them. A value that a library leaves undefined (NaN)
is printed as null.
"""

import json
import math
import sys

import krippendorff
import numpy as np
import pandas as pd
from crowdkit.aggregation import DawidSkene
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa


def num(x):
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def alpha(case):
    data = np.array(
        [[np.nan if v is None else v for v in coder] for coder in case["matrix"]], dtype=float
    )
    try:
        return num(krippendorff.alpha(reliability_data=data, level_of_measurement=case["level"]))
    except (ValueError, ZeroDivisionError):
        return None


def dawid_skene(case):
    df = pd.DataFrame(case["answers"], columns=["task", "worker", "label"])
    gold = case.get("gold") or {}
    true_labels = pd.Series({int(t): int(c) for t, c in gold.items()}) if gold else None
    ds = DawidSkene(n_iter=case["max_iter"], tol=case["tol"])
    ds.fit(df, true_labels=true_labels) if true_labels is not None else ds.fit(df)
    probas = ds.probas_[sorted(ds.probas_.columns)]
    return {
        "classes": [int(c) for c in probas.columns],
        "probas": {str(int(t)): [float(v) for v in row] for t, row in probas.iterrows()},
    }


def main():
    cases = json.load(sys.stdin)
    out = {
        "alpha": [alpha(c) for c in cases["alpha"]],
        "fleiss": [num(fleiss_kappa(np.array(t, dtype=float), method="fleiss")) for t in cases["fleiss"]],
        "cohen": [num(cohen_kappa_score(a, b)) for a, b in cases["cohen"]],
        "dawid_skene": [dawid_skene(c) for c in cases["dawid_skene"]],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
