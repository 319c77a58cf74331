"""``python -m model.evaluate --help``: quality (and speed) of a model, measured the same way every time.

A thin entry point: the protocol is model/evaluation/ (config, protocol, metrics, report, cli).
"""
from .evaluation.cli import main, parse_args
from .evaluation.config import EvalConfig
from .evaluation.protocol import run

__all__ = ["EvalConfig", "main", "parse_args", "run"]

if __name__ == "__main__":
    main()
