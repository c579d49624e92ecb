"""Spark scoring: the registered model as `mlflow.pyfunc.spark_udf` with a struct result
(labels, scores) on a local[2] session. Runs when pyspark is installed (the `spark` extra;
`make test` installs it)."""

from __future__ import annotations

import pytest

from tests.toy_data import TOPICS, toy_documents

pyspark = pytest.importorskip("pyspark", reason="pyspark is the optional `spark` extra")


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("lcr-test")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
               .getOrCreate())
    yield session
    session.stop()


def test_spark_udf_scores_a_dataframe(spark, registered, monkeypatch):
    import mlflow
    from pyspark.sql.functions import col, struct

    from lcr.serve.predictor import Predictor
    from lcr.serve.pyfunc import SPARK_RESULT_TYPE

    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered["uri"])
    docs = toy_documents(16, 2)
    frame = spark.createDataFrame([(d.id, d.text) for d in docs], ["id", "text"]).repartition(2)
    udf = mlflow.pyfunc.spark_udf(spark, "models:/lcr-toy/1", result_type=SPARK_RESULT_TYPE,
                                  env_manager="local", params={"top_k": 2})
    scored = frame.withColumn("prediction", udf(struct(col("text")))).select(
        "id", col("prediction.labels").alias("labels"), col("prediction.scores").alias("scores"))
    rows = {row["id"]: row for row in scored.collect()}
    assert sorted(rows) == sorted(d.id for d in docs)
    assert all(len(row["labels"]) == 2 and set(row["labels"]) <= set(TOPICS) for row in rows.values())
    # The same answers as the model folder in this process.
    direct = Predictor.load(registered["folder"]).predict([d.text for d in docs], k=2)
    for doc, expected in zip(docs, direct):
        assert rows[doc.id]["labels"] == [r["name"] for r in expected]
        assert rows[doc.id]["scores"] == pytest.approx([r["score"] for r in expected], abs=1e-5)
