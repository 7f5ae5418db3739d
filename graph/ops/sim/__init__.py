"""Buyer simulator (``discount-manager simulate``): personas x customers through the real graph.

Modules: ``personas`` (+ ``personas.json``, the data), ``buyer`` (what a persona says next),
``fake_model`` (the deterministic default model: fills any schema it is sent), ``runner``
(the graph and ledger per strategy and persona), ``metrics`` (deal metrics, ledger checks).
"""
