"""The protocol-neutral core between the servicers (``services/``) and the models (``models/``).

``core.inference`` decides a KServe infer and a TFS predict; ``core.generation`` decides chat,
completions, embeddings and rerank. Nothing here takes or returns KServe/TFS/OpenAI wire types:
the servicers decode a request, call the core, and encode what it returns.
"""
