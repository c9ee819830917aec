"""`zoo.core.distribute`: the line a multi-worker run prints when a peer worker went away."""

from __future__ import annotations

import types

import pytest
import tensorflow as tf

from zoo.core import distribute

RESET = "recvmsg:Connection reset by peer"
# What worker 1 got from TensorFlow 2.21 when worker 0 was killed mid-step (shortened): its own
# device comes first, the lost worker is the remote target.
OWN_DEVICE_FIRST = (
    "{{function_node __wrapped__CollectiveReduceV2_Nordering_token_1_device_/job:worker/"
    f"replica:0/task:1/device:CPU:0}}}} Collective ops is aborted by: {RESET}\n"
    "Additional GRPC error information from remote target /job:worker/replica:0/task:0 while "
    "calling /tensorflow.WorkerService/CompleteInstance:\n"
    f':UNKNOWN:Error received from peer  {{grpc_message:"{RESET}", grpc_status:14}}'
)

HEARTBEAT = "Deadline Exceeded\n\nRPC: /tensorflow.CoordinationService/Heartbeat"


def strategy_of(task_type: str, task_id: int) -> types.SimpleNamespace:
    spec = tf.train.ClusterSpec({"worker": ["localhost:1", "localhost:2"]})
    resolver = types.SimpleNamespace(
        task_type=task_type, task_id=task_id, cluster_spec=lambda: spec
    )
    return types.SimpleNamespace(cluster_resolver=resolver)


@pytest.mark.parametrize(
    "text, task, lost",
    [
        (OWN_DEVICE_FIRST, ("worker", 1), "worker 0"),
        # No remote target: the one task that is not this worker.
        (
            f"on /job:worker/replica:0/task:0 and /job:worker/replica:0/task:1: {RESET}",
            ("worker", 0),
            "worker 1",
        ),
        # Worker 1 when worker 0, the coordination service's leader, stopped answering.
        (HEARTBEAT, ("worker", 1), "worker 0"),
        (HEARTBEAT, ("worker", 0), "another worker"),
        (
            "Collective ops is aborted by: cluster check alive failed",
            ("worker", 0),
            "another worker",
        ),
    ],
)
def test_the_message_names_the_lost_worker_not_this_one(text, task, lost):
    err = tf.errors.UnavailableError(None, None, text)
    message = distribute.lost_worker_message(err, strategy_of(*task))
    assert message.startswith(f"lost contact with {lost} ("), message
    assert "\n" not in message


def test_a_strategy_within_one_process_needs_no_agreement():
    assert distribute.any_worker(tf.distribute.get_strategy()) is None
