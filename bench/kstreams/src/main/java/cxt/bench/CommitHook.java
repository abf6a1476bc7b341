package cxt.bench;

import java.util.Map;
import org.apache.kafka.streams.processor.StateStore;
import org.apache.kafka.streams.processor.StateStoreContext;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.internals.CacheFlushListener;
import org.apache.kafka.streams.state.internals.CachedStateStore;

/**
 * A store that holds nothing: it exists so that the processor's batch is written out before
 * Kafka Streams commits the offsets of the records in it.
 *
 * <p>Kafka Streams has no public "before commit" hook.  Its own caching stores emit their
 * buffered records from {@code flushCache()}, which a task calls first when it prepares a
 * commit (StreamTask.flush: flush the caches, then the producer, then commit offsets).  A
 * store that is a {@link CachedStateStore} gets that same call; without it, a commit between
 * two punctuations would commit offsets of buffered records that a crash then loses
 * (at-least-once broken).  Checked against Kafka Streams 4.1.1.
 */
final class CommitHook implements StateStore, CachedStateStore<Object, Object> {
    static final String NAME = "commit-hook";

    private Runnable beforeCommit = () -> { };
    private volatile boolean open;

    void beforeCommit(Runnable action) {
        this.beforeCommit = action;
    }

    @Override
    public void flushCache() {
        beforeCommit.run();
    }

    @Override
    public void clearCache() { }

    @Override
    public boolean setFlushListener(CacheFlushListener<Object, Object> listener, boolean sendOldValues) {
        return false;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public void init(StateStoreContext context, StateStore root) {
        context.register(root, (key, value) -> { }); // no changelog: nothing to restore
        open = true;
    }

    @Override
    public void flush() { }

    @Override
    public void close() {
        open = false;
    }

    @Override
    public boolean persistent() {
        return false;
    }

    @Override
    public boolean isOpen() {
        return open;
    }

    /** Builds the bare store (no metering or logging wrapper, so the task sees it as a CachedStateStore). */
    static StoreBuilder<CommitHook> builder() {
        return new StoreBuilder<>() {
            @Override
            public StoreBuilder<CommitHook> withCachingEnabled() {
                return this;
            }

            @Override
            public StoreBuilder<CommitHook> withCachingDisabled() {
                return this;
            }

            @Override
            public StoreBuilder<CommitHook> withLoggingEnabled(Map<String, String> config) {
                return this;
            }

            @Override
            public StoreBuilder<CommitHook> withLoggingDisabled() {
                return this;
            }

            @Override
            public CommitHook build() {
                return new CommitHook();
            }

            @Override
            public Map<String, String> logConfig() {
                return Map.of();
            }

            @Override
            public boolean loggingEnabled() {
                return false;
            }

            @Override
            public String name() {
                return NAME;
            }
        };
    }
}
