"""Component types built into the pinned ADOT collector image, so a config that names a component
the image lacks (or a spelling it does not know) fails here instead of in a crash-looping task.

Source: aws-observability/aws-otel-collector at tag v0.49.0, pkg/defaultcomponents/defaults.go
(the factories) and each vendored component's metadata.yaml (`type`, and `deprecated_type`,
which the collector still accepts as an alias). Regenerate this table when the image tag moves.
"""

ADOT_TAG = "v0.49.0"

COMPONENTS = {
    "receivers": {
        "awscontainerinsightreceiver", "awsecscontainermetrics", "awsxray", "file_log", "filelog",
        "jaeger", "kafka", "otlp", "prometheus", "statsd", "zipkin",
    },
    "processors": {
        "attributes", "batch", "cumulativetodelta", "deltatorate", "filter", "groupbytrace",
        "k8s_attributes", "k8sattributes", "memory_limiter", "metrics_transform",
        "metricstransform", "metricsgeneration", "probabilistic_sampler", "resource",
        "resource_detection", "resourcedetection", "span", "tail_sampling",
    },
    "exporters": {
        "awscloudwatchlogs", "awsemf", "awsxray", "datadog", "debug", "file", "kafka",
        "load_balancing", "loadbalancing", "logzio", "otlp", "otlp_grpc", "otlp_http", "otlphttp",
        "prometheus", "prometheus_remote_write", "prometheusremotewrite", "signalfx",
    },
    "extensions": {
        "awsproxy", "ecs_observer", "file_storage", "health_check", "pprof", "sigv4auth", "zpages",
    },
}

# Deprecated spellings: accepted by this image, but they log a warning at every start.
DEPRECATED = {
    "receivers": {"filelog"},
    "processors": {"k8sattributes", "metricstransform", "resourcedetection"},
    "exporters": {"loadbalancing", "otlp", "otlphttp", "prometheusremotewrite"},
    "extensions": set(),
}
