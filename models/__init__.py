"""Model registry, onnxruntime sessions, tokenization and decoding. No Gradio here: demos/ owns the UI."""
