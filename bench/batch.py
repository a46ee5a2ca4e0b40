"""Batch scoring benchmark: ratios measured in one run (not a test; numbers are printed).

    .venv/bin/python bench/batch.py [--rows 1000000] [--big-rows 10000000] [--skip-spark]

1. Synthetic data: ``--rows`` customers to Parquet with churnops.data.synth.
2. 1M from Parquet, validated, scored and written, into SQLite and into PostgreSQL, by
   ``churnops.batch.score`` against a seed-style job on the same data and table: read the
   whole file, validate, ``predict_proba`` on the whole DataFrame, explain the high-risk
   rows, rank with pandas, ``DataFrame.to_sql`` into ``churn_scores``. A second baseline
   (predict + ``to_sql`` only: no validation, no reasons, no rank) is printed for honesty.
3. Peak RSS of a child process scoring ``--rows`` and ``--big-rows`` (chunking: flat).
4. Spark: the churnops engine (mapInPandas over ScoringModel) vs plain
   ``mlflow.pyfunc.spark_udf`` on the same Parquet, both into Spark's ``noop`` sink, plus
   the churnops engine end to end (into SQLite).
The model is a LightGBM champion trained on the demo data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

POSTGRES_URL = os.environ.get(
    "CHURNOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DAY = date(2026, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("HOME", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(Path(args.child[0]), args.child[1])
    with tempfile.TemporaryDirectory(prefix="churnops-bench-") as tmp:
        _bench(Path(tmp), args)


def _bench(tmp: Path, args: argparse.Namespace) -> None:
    from churnops.config import Settings
    from churnops.data.synth import write_synthetic

    home = tmp / "home"
    settings = Settings(home=home, trials=3, cv_folds=3, families=["lightgbm"])
    _train(settings)
    source = tmp / "customers.parquet"
    t = time.perf_counter()
    write_synthetic(source, args.rows, seed=1)
    synth_s = time.perf_counter() - t
    print(f"synth: {args.rows:,} rows -> Parquet in {synth_s:.2f}s (target <= 10 s for 1M)")

    results = {"rows": args.rows, "synth_seconds": round(synth_s, 2)}
    for name, url in (("sqlite", f"sqlite:///{tmp / 'store.db'}"), ("postgresql", None)):
        schema = None
        if url is None:
            schema, url = _pg_schema()
        try:
            results[name] = _compare(settings, source, url)
        finally:
            if schema:
                _drop_pg_schema(schema)
    if not args.skip_memory:
        big = tmp / "big.parquet"
        write_synthetic(big, args.big_rows, seed=2)
        results["peak_rss_mb"] = {
            f"{args.rows:,}": _child_rss(home, source),
            f"{args.big_rows:,}": _child_rss(home, big),
        }
        big.unlink()
        print(f"peak RSS of a scoring process (MB): {results['peak_rss_mb']}")
    if not args.skip_spark:
        results["spark"] = _spark(settings, source, f"sqlite:///{tmp / 'spark.db'}")
    print(json.dumps(results, indent=2))


def _train(settings) -> None:
    from churnops.data.demo import DEMO_ID, DEMO_TARGET, load_demo
    from churnops.stages import train_and_register

    train_and_register(load_demo(), settings, target=DEMO_TARGET, id_column=DEMO_ID)


def _compare(settings, source: Path, url: str) -> dict:
    from churnops import registry
    from churnops.batch import score
    from churnops.store import get_engine

    s = settings.model_copy(update={"database_url": url})
    get_engine(s)  # migrate outside the timings
    registry.load_model(s)  # warm imports outside the timings
    t = time.perf_counter()
    run = score(s, source, scoring_date=DAY)
    ours = time.perf_counter() - t
    t = time.perf_counter()
    score(s, source, scoring_date=DAY)
    rerun = time.perf_counter() - t
    seed = _seed_style(s, source, url, full=True)
    plain = _seed_style(s, source, url, full=False)
    backend = url.split(":")[0].split("+")[0]
    print(
        f"{backend}: churnops {ours:.1f}s (re-run of the date {rerun:.1f}s), "
        f"seed-style {seed:.1f}s -> {seed / ours:.1f}x; predict+to_sql only {plain:.1f}s "
        f"-> {plain / ours:.2f}x  [{run['rows_scored']:,} rows, {run['high_risk']:,} high risk]"
    )
    return {
        "churnops_s": round(ours, 2),
        "churnops_rerun_s": round(rerun, 2),
        "seed_style_s": round(seed, 2),
        "ratio": round(seed / ours, 2),
        "predict_to_sql_only_s": round(plain, 2),
        "ratio_vs_predict_to_sql_only": round(plain / ours, 2),
    }


def _seed_style(settings, source: Path, url: str, *, full: bool) -> float:
    """The job as first written: everything in memory at once, then DataFrame.to_sql."""
    import json as jsonlib

    import pandas as pd
    import sqlalchemy as sa

    from churnops import registry
    from churnops.data.validation import validate

    started = time.perf_counter()
    model = registry.load_model(settings).model
    df = pd.read_parquet(source)
    if full:
        df = validate(df.drop(columns=["churn"]), model.contract, require_target=False).frame
    X = model.encoder.transform(df)
    proba = model.estimator.predict_proba(X)[:, 1]
    out = pd.DataFrame({"customer_id": df["customer_id"], "score": proba})
    out["high_risk"] = proba >= model.threshold
    table = "churn_scores" if full else "seed_scores"
    if full:
        reasons = pd.Series(None, index=out.index, dtype=object)
        high = out["high_risk"].to_numpy()
        reasons[high] = [jsonlib.dumps(r) for r in model.reasons(X[high])]
        out["reasons"] = reasons
        out["risk_rank"] = out["score"].rank(method="first", ascending=False).astype(int)
        out = out.assign(
            scoring_date=date(2026, 1, 2),
            model_name="churn-model",
            model_version="1",
            threshold=model.threshold,
            run_id=0,
        )
    engine = sa.create_engine(url)
    out.to_sql(table, engine, if_exists="append" if full else "replace", index=False)
    engine.dispose()
    return time.perf_counter() - started


def _child_rss(home: Path, source: Path) -> float:
    argv = [sys.executable, __file__, "--child", str(home), str(source)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def _child(home: Path, source: str) -> None:
    from churnops.batch import score
    from churnops.config import Settings

    url = f"sqlite:///{home.parent / f'rss-{uuid.uuid4().hex[:6]}.db'}"
    run = score(Settings(home=home, database_url=url), source, scoring_date=DAY)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"rows": run["rows_scored"], "peak_rss_mb": round(rss, 1)}))


def _spark(settings, source: Path, url: str) -> dict:
    from pyspark.sql import functions as F

    from churnops import registry
    from churnops.batch import score
    from churnops.batch.chunk import TopScores, score_chunk
    from churnops.batch.spark import OUTPUT_SCHEMA, spark_session

    model = registry.load_model(settings).model
    with tempfile.TemporaryDirectory(prefix="churnops-bench-spark-") as tmp:
        spark = spark_session("local[*]", Path(tmp))
        spark.sparkContext.setLogLevel("ERROR")
        frame = spark.read.parquet(str(source)).drop("churn")
        rows = frame.count()

        def ours(batches):
            top = TopScores(settings.reasons_top)
            for batch in batches:
                result = score_chunk(model, batch, 0, top).scores
                yield result.assign(row_number=None, reason=None)

        t = time.perf_counter()
        frame.mapInPandas(ours, OUTPUT_SCHEMA).write.format("noop").mode("overwrite").save()
        engine_s = time.perf_counter() - t
        udf = registry.spark_udf(spark, settings)
        t = time.perf_counter()
        scored = frame.withColumn("p", udf(F.struct(*frame.columns)).getField("probability"))
        scored.write.format("noop").mode("overwrite").save()
        udf_s = time.perf_counter() - t
        spark.stop()
    s = settings.model_copy(update={"database_url": url})
    t = time.perf_counter()
    score(s, source, scoring_date=DAY, engine="spark")
    end_to_end = time.perf_counter() - t
    result = {
        "rows": rows,
        "engine_rows_per_s": round(rows / engine_s),
        "spark_udf_rows_per_s": round(rows / udf_s),
        "ratio": round(udf_s / engine_s, 2),
        "engine_end_to_end_s": round(end_to_end, 1),
    }
    print(
        f"spark: churnops engine {result['engine_rows_per_s']:,} rows/s (validation + scores + "
        f"reasons) vs mlflow spark_udf {result['spark_udf_rows_per_s']:,} rows/s -> "
        f"{result['ratio']}x; churnops --engine spark end to end into SQLite {end_to_end:.1f}s"
    )
    return result


def _pg_schema() -> tuple[str, str]:
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return schema, f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


def _drop_pg_schema(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


if __name__ == "__main__":
    main()
