package cxt.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import sun.misc.Signal;

/**
 * The peer: the benchmark topology (bench/impl_ceiling.py) written with Kafka Streams.
 *
 * <pre>
 *   KAFKA_BOOTSTRAP_SERVERS=... REDIS_URL=... java -jar bench/kstreams/target/cxt-kstreams.jar
 * </pre>
 *
 * <p>One source over the five inbound topics -> TimelineProcessor (validate, batch, one MGET
 * and one Lua call per batch) -> three sinks (timeline, alerts, dead letters).  At-least-once,
 * a commit every 100 ms; offsets are committed only after the batch is in Redis and Kafka
 * acknowledged its publishes (CommitHook).  Runs until SIGTERM / SIGINT; every 10 s it
 * prints to stderr
 * {@code kstreams: in <records> (<rate>/s) published <n> dead-lettered <n> alerts <n> batches <n> (<n>
 * before a commit)}.
 */
public final class KStreamsWorker {
    private static final String SOURCE = "inbound";
    private static final String PROCESSOR = "timeline";
    private static final long STATUS_EVERY_S = 10;

    private KStreamsWorker() { }

    public static void main(String[] args) throws InterruptedException {
        // Before the first logger exists: Kafka's INFO lines (config dumps) would flood the log.
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel",
                System.getenv().getOrDefault("KSTREAMS_LOG_LEVEL", "warn"));
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        Config config = Config.fromEnv(System.getenv());
        AtomicBoolean stopping = new AtomicBoolean();
        KafkaStreams streams = new KafkaStreams(topology(config, stopping::get), properties(config));

        CountDownLatch done = new CountDownLatch(1);
        AtomicBoolean failed = new AtomicBoolean();
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR) {
                failed.set(true);
                done.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(exc -> {
            System.err.println("kstreams: stream thread failed: " + exc);
            exc.printStackTrace();
            failed.set(true);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        // A handler, not a shutdown hook: exit 0 after a clean close, as the other workers do.
        for (String name : new String[] {"TERM", "INT"}) {
            Signal.handle(new Signal(name), signal -> done.countDown());
        }
        System.err.println("kstreams: starting (" + config.threads() + " stream threads, a batch at least every "
                + config.punctuateMs() + " ms)");
        streams.start();
        long lastIn = 0;
        long lastNs = System.nanoTime();
        while (!done.await(STATUS_EVERY_S, TimeUnit.SECONDS)) {
            long in = TimelineProcessor.IN.get();
            long nowNs = System.nanoTime();
            System.err.printf("kstreams: in %d (%.0f/s) published %d dead-lettered %d alerts %d"
                            + " batches %d (%d before a commit)%n", in,
                    (in - lastIn) / ((nowNs - lastNs) / 1e9), TimelineProcessor.OUT.get(),
                    TimelineProcessor.DEAD.get(), TimelineProcessor.RAISED.get(),
                    TimelineProcessor.BATCHES.get(), TimelineProcessor.BEFORE_COMMIT.get());
            lastIn = in;
            lastNs = nowNs;
        }
        stopping.set(true); // Redis retries give up now: what is not committed is redelivered
        // close() commits: the batch in flight is written and published first (CommitHook).
        boolean closed = streams.close(Duration.ofSeconds(10));
        System.err.println("kstreams: stopped after " + TimelineProcessor.IN.get() + " records"
                + (closed ? "" : " (close timed out)"));
        System.exit(failed.get() ? 1 : 0);
    }

    static Topology topology(Config config, java.util.function.BooleanSupplier stopping) {
        ObjectMapper json = new ObjectMapper();
        Topology topology = new Topology();
        ByteArrayDeserializer in = new ByteArrayDeserializer();
        ByteArraySerializer out = new ByteArraySerializer();
        topology.addSource(SOURCE, in, in, config.channelOfTopic().keySet().toArray(new String[0]));
        topology.addProcessor(PROCESSOR, () -> new TimelineProcessor(config, json, stopping), SOURCE);
        topology.addStateStore(CommitHook.builder(), PROCESSOR);
        topology.addSink(TimelineProcessor.TIMELINE, config.timelineTopic(), out, out, PROCESSOR);
        topology.addSink(TimelineProcessor.ALERTS, config.alertsTopic(), out, out, PROCESSOR);
        topology.addSink(TimelineProcessor.DEADLETTER, config.deadletterTopic(), out, out, PROCESSOR);
        return topology;
    }

    static Properties properties(Config config) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, config.appId());
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, config.bootstrap());
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, config.threads());
        // The worker runs in a scratch directory (bench/harness.py); nothing is kept there.
        p.put(StreamsConfig.STATE_DIR_CONFIG, Path.of("kstreams-state").toAbsolutePath().toString());
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        // Measured (bench/kstreams/README.md): Kafka Streams' defaults (poll.ms 100, max.task.idle.ms 0)
        // gave p50 65 / p99 140-170 ms at 5,000/s; 10 and -1 gave 38 / 91 ms at the same throughput.
        // A short poll lets the punctuation run on time; -1 lets a task process one topic's records
        // without waiting for fetches of its other four (the order that matters is occurred_at,
        // kept by the timeline's sorted set, not the arrival order across topics).
        p.put(StreamsConfig.POLL_MS_CONFIG, Long.parseLong(System.getenv().getOrDefault("KSTREAMS_POLL_MS", "10")));
        p.put(StreamsConfig.MAX_TASK_IDLE_MS_CONFIG,
                Long.parseLong(System.getenv().getOrDefault("KSTREAMS_TASK_IDLE_MS", "-1")));
        // Like the ceiling's clients.
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), config.sessionTimeoutS() * 1000);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.FETCH_MAX_BYTES_CONFIG), 16 << 20);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG), 2 << 20);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_RECORDS_CONFIG), config.batchSize());
        p.put(StreamsConfig.producerPrefix(ProducerConfig.ACKS_CONFIG), "all");
        p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG),
                Integer.parseInt(System.getenv().getOrDefault("KSTREAMS_LINGER_MS", "5")));
        p.put(StreamsConfig.producerPrefix(ProducerConfig.BATCH_SIZE_CONFIG), 1 << 20);
        p.put(StreamsConfig.producerPrefix(ProducerConfig.MAX_REQUEST_SIZE_CONFIG), 8 << 20);
        return p;
    }
}
