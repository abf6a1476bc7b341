package cxt.bench;

import java.util.LinkedHashMap;
import java.util.Map;

/** The settings the bench gives every worker (bench/harness.py worker_env, kernel/settings.py). */
record Config(
        String bootstrap,
        String redisUrl,
        Keys keys,
        String appId,
        Map<String, String> channelOfTopic,
        String timelineTopic,
        String alertsTopic,
        String deadletterTopic,
        int batchSize,
        int batchWindowMs,
        int maxEventBytes,
        int sessionTimeoutS,
        int threads,
        int punctuateMs) {

    static final String[] CHANNELS = {"call", "chat", "email", "survey", "social"};

    static Config fromEnv(Map<String, String> env) {
        Map<String, String> channels = new LinkedHashMap<>();
        for (String channel : CHANNELS) {
            channels.put(get(env, "CXT_TOPIC_" + channel.toUpperCase(), "cx." + channel + ".v1"), channel);
        }
        return new Config(
                get(env, "KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
                get(env, "REDIS_URL", "redis://localhost:6379/0"),
                Keys.fromEnv(env),
                get(env, "CXT_APP_ID", "cx-timeline"),
                channels,
                get(env, "CXT_TOPIC_TIMELINE", "cx.timeline.v1"),
                get(env, "CXT_TOPIC_ALERTS", "cx.alerts.v1"),
                get(env, "CXT_TOPIC_DEADLETTER", "cx.deadletter.v1"),
                Integer.parseInt(get(env, "CXT_BATCH_SIZE", "2000")),
                Integer.parseInt(get(env, "CXT_BATCH_WINDOW_MS", "50")),
                Integer.parseInt(get(env, "CXT_MAX_EVENT_BYTES", "262144")),
                Integer.parseInt(get(env, "CXT_SESSION_TIMEOUT_S", "30")),
                // Not a project setting: a knob of this peer only, for the bench's tuning runs.
                Integer.parseInt(get(env, "KSTREAMS_THREADS", "2")),
                // The wall-clock punctuation that writes a partly filled batch (default: the
                // batch window, the ceiling's longest wait for a batch).
                Integer.parseInt(get(env, "KSTREAMS_PUNCTUATE_MS", get(env, "CXT_BATCH_WINDOW_MS", "50"))));
    }

    private static String get(Map<String, String> env, String name, String fallback) {
        String value = env.get(name);
        return value == null || value.isEmpty() ? fallback : value;
    }
}
