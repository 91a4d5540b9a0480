"""Wire formats: Avro single-object values, ETL package decoding, canonical checksums."""
