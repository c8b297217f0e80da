"""The clinic web app (Django): patient records, roles, pages, charts, a patient diary and a JSON API.

It adds no clinical logic: every number comes from the core, read from the records by small modules
named for one concept (`prescriptions`, `plan_records`, `level_records`, `safety`, `mirror_records`,
`scoring`, `patient_model`, `guided`, `replans`), cached per data version (`page_cache`) and drawn by
`charts`.
"""
