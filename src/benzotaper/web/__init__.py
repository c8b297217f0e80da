"""The clinic web app (Django): patient records, roles, pages, charts, a patient diary and a JSON API.

It adds no clinical logic: every number comes from the core through `services.py`.
"""
