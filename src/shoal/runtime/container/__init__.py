"""The container runtime's adapters: one seam to a container engine (podman or Docker) and what sits on it.

Role: everything shoal asks of a container engine goes through the ``docker`` SDK, which speaks
both Docker Engine's API and podman's compatible one (``podman system service``), so one code path
serves both. ``conf`` and ``service`` start a private podman API service when no engine URL is
given; ``engine`` finds and describes the engine; ``images`` pulls, builds, copies out and prunes;
``containers`` runs, watches, stops and removes; ``stack`` makes the build-and-run stack image.

Must not: be imported outside ``shoal.runtime.container`` for its SDK (the architecture test keeps
the ``docker`` package here), log a registry credential, or touch what another shoal installation
labelled (every object carries ``shoal.owner``).
"""
