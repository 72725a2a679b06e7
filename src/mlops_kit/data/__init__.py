"""Datasets: the declarative spec of a dataset, its checks, and synthetic data for any spec.

* :mod:`mlops_kit.data.spec` — :class:`~mlops_kit.data.spec.DatasetSpec`, ``load_spec``,
  ``spec_of(settings)`` and the bundled specs;
* :mod:`mlops_kit.data.expressions` — the safe expressions of on-demand features and unit
  conversions;
* :mod:`mlops_kit.data.generate` — clean and raw synthetic records for any spec, with the
  accounting the ETL must report;
* :mod:`mlops_kit.data.request` — the prediction request and response of a spec.
"""
