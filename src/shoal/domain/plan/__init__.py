"""The run plan: what one deployment asks a runtime to build and run, typed, made once from the spec.

Every runtime (``simulate``, ``local``, ``container``, ``kubernetes``), the deployer, insights and
the ingress publisher read this and nothing else: the normalised spec dict stops here. That is
where DigitalOcean's *running* defaults live (one instance, the default size, port 8080,
``index.html``, RUN_AND_BUILD_TIME, POST_DEPLOY, ``latest``), so a spec can be stored and echoed
as the user wrote it while every backend runs it the same way.

Values a unit cannot know until the deployment runs stay out of it, or are filled in later by
``AppPlan.with_progress``: the commit fetched for a component, the artefact its build made.
Environment values are kept raw (``SECRET`` values still sealed, ``${...}`` bindables still
unresolved) because what they resolve to is the runtime's to say: ``${api.PRIVATE_URL}`` is a
loopback port for processes and ``http://api:8080`` for containers.

The offline rule also lives here (reference §4.10): maintenance mode (``enabled``) keeps
everything running behind the offline page; an archived app (``archive``, which implies
``enabled``) runs nothing but its dev databases, whose data must survive un-archiving.
"""

from shoal.domain.plan.app import AppPlan, Domain, Maintenance
from shoal.domain.plan.reading import (alert_rules, archived, jobs_of_kind, make_plan, running_units, source_dir_of,
                                       source_of, stopped_units, units_of)
from shoal.domain.plan.units import (DEFAULT_HTTP_PORT, DEPLOYMENT_LISTS, KINDS, LIVENESS_DEFAULTS, MESSAGE_BASE,
                                     READINESS_DEFAULTS, AlertRule, Artifact, Autoscaling, BuildPlan, BuildStrategy,
                                     DatabasePlan, EnvVar, GitSource, ImageSource, JobKind, Kind, LogDestination,
                                     Probe, RunUnit, Schedule, Size, Source, StaticDocs, Termination, probe_from_spec)

__all__ = ["DEFAULT_HTTP_PORT", "DEPLOYMENT_LISTS", "KINDS", "LIVENESS_DEFAULTS", "MESSAGE_BASE", "READINESS_DEFAULTS",
           "AlertRule", "AppPlan", "Artifact", "Autoscaling", "BuildPlan", "BuildStrategy", "DatabasePlan", "Domain",
           "EnvVar", "GitSource", "ImageSource", "JobKind", "Kind", "LogDestination", "Maintenance", "Probe",
           "RunUnit", "Schedule", "Size", "Source", "StaticDocs", "Termination", "alert_rules", "archived",
           "jobs_of_kind", "make_plan", "probe_from_spec", "running_units", "source_dir_of", "source_of", "stopped_units",
           "units_of"]
