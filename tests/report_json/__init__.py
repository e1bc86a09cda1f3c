"""Tests of the Report and its JSON contract (src/weighttie/report.py, report_json.py)."""
