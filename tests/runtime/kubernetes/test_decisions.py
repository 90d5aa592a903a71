"""The Kubernetes adapter's pure decisions, by calling them: which API versions, whether an object differs,
what a rollout or a Job says, which endpoints are ready, how labels and namespaces are named, which
errors are worth retrying. (The same code against a real cluster: ``test_adapter.py``.)"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from shoal.runtime.kubernetes.apply import differs, with_merge_keys  # noqa: E402
from shoal.runtime.kubernetes.discovery import choose, parse_server_version  # noqa: E402
from shoal.runtime.kubernetes.endpoints import Address, ready_addresses  # noqa: E402
from shoal.runtime.kubernetes.errors import GiveUp, RetryIn, from_api_error, from_status  # noqa: E402
from shoal.runtime.kubernetes.namespaces import label_value, namespace_name  # noqa: E402
from shoal.runtime.kubernetes.watch import deployment_rollout, gone, job_finished  # noqa: E402

OLD = {"v1": {"Pod"}, "batch/v1": {"Job"}, "batch/v1beta1": {"CronJob"},
       "autoscaling/v2beta2": {"HorizontalPodAutoscaler"}, "networking.k8s.io/v1": {"Ingress"}}
NEW = {"batch/v1": {"Job", "CronJob"}, "autoscaling/v2": {"HorizontalPodAutoscaler"},
       "autoscaling/v2beta2": {"HorizontalPodAutoscaler"}, "networking.k8s.io/v1": {"Ingress"}}


def test_versions_follow_the_kinds_each_group_version_lists() -> None:
    old = choose(OLD, (1, 20))
    assert (old.cronjob, old.hpa, old.server_side_apply, old.cronjob_time_zone) == \
        ("batch/v1beta1", "autoscaling/v2beta2", True, False)
    new = choose(NEW, (1, 30))
    assert (new.cronjob, new.hpa, new.cronjob_time_zone) == ("batch/v1", "autoscaling/v2", True)
    assert not choose(OLD, (1, 17)).server_side_apply
    with pytest.raises(GiveUp, match="no CronJob API"):
        choose({**OLD, "batch/v1beta1": set()}, (1, 20))


@pytest.mark.parametrize(("major", "minor", "expected"), [("1", "20", (1, 20)), ("1", "27+", (1, 27))])
def test_server_versions_are_read(major: str, minor: str, expected: tuple[int, int]) -> None:
    assert parse_server_version(major, minor) == expected


def test_only_rendered_fields_count_as_a_difference() -> None:
    live = {"metadata": {"name": "a", "labels": {"x": "1", "added-by-someone": "y"}, "uid": "u"},
            "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}, "status": {}}
    assert not differs({"metadata": {"name": "a", "labels": {"x": "1"}}}, live)
    assert differs({"metadata": {"labels": {"x": "2"}}}, live)
    assert differs({"spec": {"ports": [{"port": 80}, {"port": 81}]}}, live)
    assert differs({"spec": {"replicas": 1}}, live)


def test_ports_get_their_merge_key() -> None:
    obj: dict[str, Any] = {"spec": {"ports": [{"port": 80}], "template": {"spec": {"containers": [
        {"ports": [{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}]}]}}}}
    filled = with_merge_keys(obj)
    assert filled["spec"]["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert [p["protocol"] for p in filled["spec"]["template"]["spec"]["containers"][0]["ports"]] == ["TCP", "UDP"]
    assert "protocol" not in obj["spec"]["ports"][0]  # the caller's object is left alone


def deployment(generation: int = 2, observed: int = 2, **status: Any) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "spec": {"replicas": 2},
            "status": {"observedGeneration": observed, **status}}


def test_a_rollout_is_done_when_every_new_replica_is_available_and_no_old_one_is_left() -> None:
    assert deployment_rollout(None).message == "waiting for the Deployment to exist"
    assert "controller" in deployment_rollout(deployment(observed=1)).message
    assert deployment_rollout(deployment(updatedReplicas=1, replicas=2)).message == "1 of 2 new replicas updated"
    assert deployment_rollout(deployment(updatedReplicas=2, replicas=3)).message == \
        "1 old replicas are pending termination"
    assert deployment_rollout(deployment(updatedReplicas=2, replicas=2, availableReplicas=1)).message == \
        "1 of 2 new replicas available"
    assert deployment_rollout(deployment(updatedReplicas=2, replicas=2, availableReplicas=2)).done
    stalled = deployment(conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded",
                                      "message": "ReplicaSet \"web-1\" has timed out progressing."}])
    assert "timed out progressing" in str(deployment_rollout(stalled).failed)


def test_a_job_is_done_when_complete_and_failed_with_its_reason() -> None:
    complete = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                         "message": "Job has reached the specified backoff limit"}]}}
    assert job_finished(complete).done
    assert job_finished(failed).failed == "BackoffLimitExceeded: Job has reached the specified backoff limit"
    assert job_finished({"status": {"active": 1}}).message == "1 running, 0 succeeded, 0 failed"
    assert job_finished(None).failed
    assert gone(None).done and not gone({"status": {"phase": "Terminating"}}).done


def test_only_ready_addresses_of_the_chosen_port_count() -> None:
    endpoints = {"subsets": [{"addresses": [{"ip": "10.0.0.2", "targetRef": {"name": "b"}},
                                            {"ip": "10.0.0.1", "targetRef": {"name": "a"}}],
                              "notReadyAddresses": [{"ip": "10.0.0.3"}],
                              "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}]}]}
    assert ready_addresses(endpoints, "http") == (Address("10.0.0.1", 8080, "a"), Address("10.0.0.2", 8080, "b"))
    assert ready_addresses(endpoints, "metrics")[0].port == 9090
    assert ready_addresses(None) == () and ready_addresses({"subsets": None}) == ()


@pytest.mark.parametrize("text", ["alice", "alice@example.com", "x" * 80, "-lead-and-trail-", "a b/c"])
def test_label_values_are_valid_and_distinct(text: str) -> None:
    value = label_value(text)
    assert re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]", value), value
    assert (value == text) == (text == "alice")
    assert label_value(text + "!") != value


def test_namespace_names_are_dns_labels_from_the_app_id() -> None:
    name = namespace_name("6F1C1E9A-3A0B-4C57-9F5E-0E0E0E0E0E0E")
    assert name == "shoal-6f1c1e9a-3a0b-4c57-9f5e-0e0e0e0e0e0e" and len(name) <= 63


def test_statuses_are_sorted_into_retry_or_give_up() -> None:
    conflict = from_status(409, b'{"kind":"Status","message":"the object has been modified"}', "PUT x")
    assert isinstance(conflict, RetryIn) and conflict.seconds == 1.0 and "has been modified" in conflict.reason
    busy = from_status(429, b"", "GET x", retry_after=7)
    assert isinstance(busy, RetryIn) and busy.seconds == 7
    refused = from_status(422, b'{"message":"spec.replicas: Invalid value"}', "POST x")
    assert isinstance(refused, GiveUp) and refused.status == 422 and "spec.replicas" in refused.reason
    assert isinstance(from_api_error(ConnectionRefusedError("refused"), "GET x"), RetryIn)


def test_pod_trouble_is_said_as_the_kubelet_says_it() -> None:
    from shoal.runtime.kubernetes import podstate

    pulling = {"status": {"containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff",
                                                                       "message": "Back-off pulling image"}}}]}}
    crashed = {"status": {"containerStatuses": [{"restartCount": 2, "state": {"running": {}},
                                                 "lastState": {"terminated": {"exitCode": 3}}}],
                          "conditions": [{"type": "Ready", "status": "False"}], "startTime": "2026-12-01T12:00:00Z"}}
    assert podstate.trouble([pulling, crashed]) == " (ImagePullBackOff: Back-off pulling image; exited with status 3)"
    assert podstate.trouble([{"status": {}}]) == ""
    assert not podstate.ready(crashed) and podstate.restarts(crashed) == 2
    assert podstate.started(crashed) is not None and podstate.started(crashed).year == 2026  # type: ignore[union-attr]
