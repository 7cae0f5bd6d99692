"""The edges: bytes in and out (files, Kafka, Redis). Encodings and retries, no inventory rules."""
