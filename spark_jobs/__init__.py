"""The Spark Structured Streaming job: Kafka -> Parquet lake."""
