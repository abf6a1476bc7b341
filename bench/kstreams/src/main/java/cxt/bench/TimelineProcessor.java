package cxt.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.processor.internals.InternalProcessorContext;
import org.apache.kafka.streams.processor.internals.ProcessorNode;
import org.apache.kafka.streams.processor.internals.ProcessorRecordContext;

/**
 * validate -> resolve the customer (identity index) -> idempotent timeline write -> publish.
 *
 * <p>One instance per task (one partition of each inbound topic).  Valid records are
 * buffered and written as one batch (one MGET, one script call), like the ceiling's
 * getmany batch: when the buffer holds CXT_BATCH_SIZE records, at every wall-clock
 * punctuation (CXT_BATCH_WINDOW_MS), and before every commit (CommitHook).  Rejected
 * records are dead-lettered at once.
 */
final class TimelineProcessor implements Processor<byte[], byte[], byte[], byte[]> {
    static final String TIMELINE = "timeline-out";
    static final String ALERTS = "alerts-out";
    static final String DEADLETTER = "deadletter-out";

    /** Counters over every task of the process, for the status line. */
    static final AtomicLong IN = new AtomicLong();
    static final AtomicLong OUT = new AtomicLong();
    static final AtomicLong DEAD = new AtomicLong();
    static final AtomicLong RAISED = new AtomicLong();
    static final AtomicLong BATCHES = new AtomicLong();
    /** Batches written by the commit's call (CommitHook): the records a commit would otherwise have skipped. */
    static final AtomicLong BEFORE_COMMIT = new AtomicLong();

    private static final DateTimeFormatter ISO_MS =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);
    private static final int MAX_REPR = 200;

    private record Pending(String topic, int partition, long offset, long timestampMs, String channel,
                           Check.Valid valid) { }

    private record Item(String owner, byte[] body, String topic, int partition, long offset, byte[] alert) { }

    private final Config config;
    private final ObjectMapper json;
    private final BooleanSupplier stopping;
    private ProcessorContext<byte[], byte[]> context;
    private InternalProcessorContext<byte[], byte[]> internal;
    private ProcessorNode<?, ?, ?, ?> node;
    private RedisWriter redis;
    private List<Pending> buffer = new ArrayList<>();

    TimelineProcessor(Config config, ObjectMapper json, BooleanSupplier stopping) {
        this.config = config;
        this.json = json;
        this.stopping = stopping;
    }

    @Override
    @SuppressWarnings("unchecked")
    public void init(ProcessorContext<byte[], byte[]> context) {
        this.context = context;
        // The task passes its internal context; this processor's node is current during init.
        this.internal = (InternalProcessorContext<byte[], byte[]>) context;
        this.node = internal.currentNode();
        this.redis = new RedisWriter(config.redisUrl(), stopping);
        context.schedule(Duration.ofMillis(config.punctuateMs()), PunctuationType.WALL_CLOCK_TIME,
                timestamp -> flush());
        CommitHook hook = context.getStateStore(CommitHook.NAME);
        hook.beforeCommit(this::flushBeforeCommit);
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
        IN.incrementAndGet();
        RecordMetadata meta = context.recordMetadata().orElseThrow();
        String channel = config.channelOfTopic().get(meta.topic());
        try {
            Check.Valid valid = Check.check(json, record.value(), channel, config.maxEventBytes());
            buffer.add(new Pending(meta.topic(), meta.partition(), meta.offset(), record.timestamp(), channel, valid));
        } catch (Check.Bad bad) {
            deadLetter(record, meta, bad.reason, bad.getMessage());
        } catch (RuntimeException exc) { // never crash on input
            String repr = exc.toString();
            deadLetter(record, meta, Check.SCHEMA_VIOLATION, repr.substring(0, Math.min(repr.length(), MAX_REPR)));
        }
        if (buffer.size() >= config.batchSize()) {
            flush();
        }
    }

    /** The commit's call (CommitHook): no node is current then, so forward() needs one set, as a punctuation does. */
    private void flushBeforeCommit() {
        if (buffer.isEmpty()) {
            return;
        }
        ProcessorNode<?, ?, ?, ?> previousNode = internal.currentNode();
        ProcessorRecordContext previousContext = internal.recordContext();
        BEFORE_COMMIT.incrementAndGet();
        internal.setCurrentNode(node);
        internal.setRecordContext(new ProcessorRecordContext(System.currentTimeMillis(), -1L, -1, null,
                new RecordHeaders()));
        try {
            flush();
        } finally {
            internal.setRecordContext(previousContext);
            internal.setCurrentNode(previousNode);
        }
    }

    private void deadLetter(Record<byte[], byte[]> record, RecordMetadata meta, String reason, String message) {
        Base64.Encoder b64 = Base64.getEncoder();
        ObjectNode body = json.createObjectNode();
        body.put("original", record.value() == null ? null : b64.encodeToString(record.value()));
        body.put("key", record.key() == null ? null : b64.encodeToString(record.key()));
        body.put("topic", meta.topic());
        body.put("partition", meta.partition());
        body.put("offset", meta.offset());
        body.put("reason", reason);
        body.put("message", message);
        body.put("rejected_at", ISO_MS.format(Instant.now()));
        context.forward(new Record<>(record.key(), bytes(body), System.currentTimeMillis()), DEADLETTER);
        DEAD.incrementAndGet();
    }

    /** The ceiling's store(): one MGET, one script call, then publish what is new (or our own redelivery). */
    private void flush() {
        if (buffer.isEmpty()) {
            return;
        }
        BATCHES.incrementAndGet();
        List<Pending> batch = buffer;
        buffer = new ArrayList<>(Math.min(config.batchSize(), 2 * batch.size()));
        Map<String, String> owners = lookup(batch);
        long nowMs = System.currentTimeMillis();
        String acceptedAt = ISO_MS.format(Instant.ofEpochMilli(nowMs));
        Keys keys = config.keys();
        List<byte[]> keysOut = new ArrayList<>(3 * batch.size());
        List<byte[]> args = new ArrayList<>(4 * batch.size());
        List<Item> items = new ArrayList<>(batch.size());
        for (Pending m : batch) {
            JsonNode event = m.valid().event();
            String owner = owner(event, m.valid().keys(), owners);
            String eventId = event.get("event_id").textValue();
            JsonNode payload = event.get("payload");
            ObjectNode entry = json.createObjectNode();
            entry.put("event_id", eventId);
            entry.put("customer_id", owner);
            entry.put("channel", m.channel());
            entry.set("type", event.get("type"));
            entry.set("occurred_at", event.get("occurred_at"));
            entry.put("accepted_at", acceptedAt);
            entry.set("payload", payload);
            ObjectNode source = entry.putObject("source");
            source.put("topic", m.topic());
            source.put("partition", m.partition());
            source.put("offset", m.offset());
            byte[] body = bytes(entry);
            keysOut.add(utf8(keys.entries().of(owner)));
            keysOut.add(utf8(keys.timeline().of(owner)));
            byte[] alert = new byte[0];
            if (m.channel().equals("survey") && bottom2Box(payload)) {
                String alertId = alertIdFor(eventId);
                ObjectNode raised = json.createObjectNode();
                raised.put("event", "raised");
                raised.put("alert_id", alertId);
                raised.put("status", "open");
                raised.put("version", 1);
                raised.put("kind", "bottom_2_box");
                raised.put("survey_event_id", eventId);
                raised.put("customer_id", owner);
                raised.set("score", payload.get("score"));
                raised.put("raised_at", ISO_MS.format(Instant.ofEpochMilli(nowMs)));
                raised.put("latency_ms", Math.max(0, nowMs - (m.timestampMs() > 0 ? m.timestampMs() : nowMs)));
                alert = bytes(raised);
                keysOut.add(utf8(keys.alert().of(alertId)));
            }
            args.add(utf8(eventId));
            args.add(utf8(Long.toString(m.valid().occurredMs())));
            args.add(body);
            args.add(alert);
            items.add(new Item(owner, body, m.topic(), m.partition(), m.offset(), alert));
        }
        publish(items, redis.write(keysOut, args));
    }

    private void publish(List<Item> items, List<Object> replies) {
        Iterator<Object> reply = replies.iterator();
        long now = System.currentTimeMillis(); // the record timestamp: when it was published, as the ceiling's
        for (Item item : items) {
            Object stored = reply.next();
            Object storedAlert = item.alert().length > 0 ? reply.next() : null;
            boolean isNew = isOne(stored);
            byte[] body = item.body();
            if (!isNew) { // already stored: republish our own redelivery, drop a duplicate
                if (!sameSource((byte[]) stored, item)) {
                    continue;
                }
                body = (byte[]) stored;
            }
            byte[] owner = utf8(item.owner());
            context.forward(new Record<>(owner, body, now), TIMELINE);
            OUT.incrementAndGet();
            if (isOne(storedAlert)) {
                RAISED.incrementAndGet();
                context.forward(new Record<>(owner, item.alert(), now), ALERTS);
                OUT.incrementAndGet();
            } else if (!isNew && storedAlert instanceof byte[] previous && previous.length > 0) {
                context.forward(new Record<>(owner, previous, now), ALERTS);
                OUT.incrementAndGet();
            }
        }
    }

    private Map<String, String> lookup(List<Pending> batch) {
        List<String> wanted = new ArrayList<>();
        for (Pending m : batch) {
            wanted.addAll(m.valid().keys());
        }
        Map<String, String> found = new HashMap<>();
        if (wanted.isEmpty()) {
            return found;
        }
        Keys keys = config.keys();
        List<byte[]> lookup = new ArrayList<>(wanted.size());
        for (String key : wanted) {
            lookup.add(utf8(keys.identity().of(key)));
        }
        List<byte[]> values = redis.mget(lookup);
        for (int i = 0; i < wanted.size(); i++) {
            byte[] value = values.get(i);
            if (value != null && value.length > 0) {
                found.put(wanted.get(i), new String(value, StandardCharsets.UTF_8));
            }
        }
        return found;
    }

    /** customer_id when the event names one, else the first identifier the index knows, else a provisional profile. */
    private String owner(JsonNode event, List<String> identityKeys, Map<String, String> found) {
        if (identityKeys.isEmpty()) {
            return event.get("customer_id").textValue();
        }
        for (String key : identityKeys) {
            String customer = found.get(key);
            if (customer != null) {
                return customer;
            }
        }
        return config.keys().provisionalMark() + identityKeys.get(0);
    }

    private boolean sameSource(byte[] stored, Item item) {
        try {
            JsonNode source = json.readTree(stored).get("source");
            return source != null && source.path("topic").asText("").equals(item.topic())
                    && source.path("partition").asInt(-1) == item.partition()
                    && source.path("offset").asLong(-1) == item.offset();
        } catch (java.io.IOException exc) {
            return false;
        }
    }

    private static boolean bottom2Box(JsonNode payload) {
        try {
            return Check.isBottom2Box(payload);
        } catch (Check.Bad bad) {
            return false; // cannot happen: check() converted the scale already
        }
    }

    /** domain.alerts.alert_id_for: deterministic, so a redelivered survey maps onto the alert it raised. */
    static String alertIdFor(String surveyEventId) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(utf8(surveyEventId));
            return "AL-" + HexFormat.of().formatHex(digest).substring(0, 20);
        } catch (NoSuchAlgorithmException exc) {
            throw new IllegalStateException(exc);
        }
    }

    private static boolean isOne(Object reply) {
        return reply instanceof Long number && number == 1L;
    }

    private byte[] bytes(JsonNode node) {
        try {
            return json.writeValueAsBytes(node);
        } catch (com.fasterxml.jackson.core.JsonProcessingException exc) {
            throw new IllegalStateException(exc);
        }
    }

    private static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public void close() {
        // Anything still buffered was not committed (the commit flushes first): redelivered.
        buffer.clear();
        redis.close();
    }
}
