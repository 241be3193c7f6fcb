"""Offline build step: packaged weights -> ONNX graphs in the model cache (+ parity checks). Uses torch."""
