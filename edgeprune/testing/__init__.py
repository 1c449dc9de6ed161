"""Helpers for the tests, not used by the product: the protocol's host build (`native`), a
fault-injecting TCP proxy (`faults`) and the per-layer int8 agreement with onnxruntime
(`layer_agreement`). They sit above every stage and may import any of them."""
