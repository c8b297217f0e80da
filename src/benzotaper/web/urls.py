"""URL map: pages, the patient diary, the JSON API and the health check."""

from __future__ import annotations

from django.contrib.auth.views import LogoutView
from django.urls import path

from benzotaper.web import diary, loop_views, views
from benzotaper.web.api import api
from benzotaper.web.fhir_http import fhir_api
from benzotaper.web.security import ThrottledLoginView

handler404 = "benzotaper.web.views.not_found"  # JSON under /api/, Django's page elsewhere

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", views.home, name="home"),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("language/", views.set_language, name="set_language"),
    path("crisis/", views.crisis, name="crisis"),
    path("patients/", views.patient_list, name="patients"),
    path("patients/new/", views.patient_new, name="patient_new"),
    path("patients/<int:pid>/", views.patient_page, name="patient"),
    path("patients/<int:pid>/edit/", views.patient_edit, name="patient_edit"),
    path("patients/<int:pid>/regimen/", views.regimen_new, name="regimen_new"),
    path("patients/<int:pid>/levels/new/", views.level_new, name="level_new"),
    path("patients/<int:pid>/assess/<str:instrument>/", views.assessment_new, name="assessment_new"),
    path("patients/<int:pid>/symptoms/new/", views.symptom_new, name="symptom_new"),
    path("patients/<int:pid>/holds/new/", views.hold_new, name="hold_new"),
    path("patients/<int:pid>/plan/", views.plan_builder, name="plan_builder"),
    path("patients/<int:pid>/plan/guided/", loop_views.guided_builder, name="guided_builder"),
    path("patients/<int:pid>/replans/<int:rid>/", loop_views.replan_detail, name="replan"),
    path("worklist/", loop_views.worklist_page, name="worklist"),
    path("sources/", loop_views.sources_page, name="sources"),
    path("patients/<int:pid>/plans/<int:version>/", views.plan_detail, name="plan_detail"),
    path("patients/<int:pid>/plans/<int:version>/<str:kind>", views.plan_file, name="plan_file"),
    path("patients/<int:pid>/audit/", views.audit_trail, name="audit"),
    path("diary/", diary.diary, name="diary"),
    path("diary/dose/", diary.diary_dose, name="diary_dose"),
    path("diary/checkin/", diary.diary_checkin, name="diary_checkin"),
    path("diary/bwsq/", diary.diary_bwsq, name="diary_bwsq"),
    path("api/", api.urls),
    path("", fhir_api.urls),
]
