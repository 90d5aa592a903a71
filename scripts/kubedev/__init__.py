"""kube-dev-cluster: a throwaway one-node Kubernetes 1.20.2 cluster on loopback (see ``cli``)."""
