"""moto's server (`moto_server`'s options), answering one request at a time. DynamoDB's
conditional writes are atomic per item; moto's are not when its threads serve two at once (its
backend takes no lock), so racing writers could both win. Serving requests in turn gives the
tests DynamoDB's guarantee. Used by e2e/tasks_cluster.py and platform/tests/it/tasks.rs."""
import sys

from moto import server

_run_simple = server.run_simple


def _one_at_a_time(*args, **kwargs):
    kwargs["threaded"] = False
    return _run_simple(*args, **kwargs)


server.run_simple = _one_at_a_time

if __name__ == "__main__":
    server.main(sys.argv[1:])
