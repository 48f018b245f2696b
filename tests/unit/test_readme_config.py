import re
from pathlib import Path

from ovms_grpc.config import parse_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_config_example_is_valid() -> None:
    """The config.json the README writes (a heredoc in its config example) validates as written."""
    text = README.read_text()
    block = re.search(r"<!-- example: config -->\n```bash\n.*?<<'EOF'\n(.*?)\nEOF\n", text, re.S)
    assert block
    serving = parse_config(block.group(1), "README config", Path("/srv"))
    assert [m.name for m in serving.models] == ["resnet", "dummy"]
    assert serving.models[1].base_path == Path("/srv/dummy")
