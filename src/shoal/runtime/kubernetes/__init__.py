"""The Kubernetes backend: shoal's components as Kubernetes objects, through the official client.

This package is the only importer of ``kubernetes``. Its layers, bottom up:

    connection  one ApiClient (kubeconfig + context, or in-cluster); raw JSON requests and streams
    errors      RetryIn / GiveUp: what a reconcile step says when it cannot finish now
    discovery   which API versions the server offers (CronJob batch/v1 or v1beta1, HPA v2 or v2beta2)
                and the REST path of every kind
    apply       idempotent apply: server-side apply where offered, else create/replace with resourceVersion
    watch       watch an object until a judge says it converged (or failed), re-listing on 410 Gone
    namespaces  one labelled namespace per app; delete waits until it is gone
    logs        pod log streaming (follow included)
    endpoints   a Service's ready addresses, as they change
    images      ``image`` sources pinned by the digest their registry answers
    builds      git sources built by the container runtime's builder on shoal's host, pushed to
                ``--image-registry``, run by digest (the package's only use of a container engine,
                through ``shoal.runtime.container``)
    static      static sites, built on shoal's host and served by its ingress
    artifacts   what each unit runs: its source fetched, its image resolved or built (the build steps)

Each step re-reads the state it acts on, so running it again after a crash changes nothing.
"""
