"""The Bytewax flows: wiring only. Each step calls one function of `state` or `connectors`."""
