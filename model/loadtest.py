"""``python -m model.loadtest --help``: load test of a running app (see model/bench/loadtest.py)."""
from .bench.loadtest import LoadConfig, classify, main, parse_args, run_load, summarize

__all__ = ["LoadConfig", "classify", "main", "parse_args", "run_load", "summarize"]

if __name__ == "__main__":
    main()
