"""Generative serving over openvino_genai: engines, chat templates, parsers and test fixtures."""
