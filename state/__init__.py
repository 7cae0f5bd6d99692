"""The domain core: ledger, ATP, holds, sourcing. Pure Python: no Bytewax, Kafka or Redis."""
