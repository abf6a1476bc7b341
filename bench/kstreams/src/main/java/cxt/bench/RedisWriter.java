package cxt.bench;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.exceptions.JedisConnectionException;
import redis.clients.jedis.exceptions.JedisNoScriptException;

/** One Redis connection per task: the identity lookup (one MGET) and the batch's writes (one script call). */
final class RedisWriter implements AutoCloseable {
    /**
     * The ceiling's script (bench/impl_ceiling.py WRITE), passed by bench/compare.py as
     * KSTREAMS_WRITE_SCRIPT so the two peers run the same text.  Per event: KEYS entries
     * hash, timeline zset [, alert key]; ARGV event_id, occurred ms, entry JSON, alert JSON or "".
     * Returns per event 1 (stored now) or the entry already stored, then for an alert 1 or the
     * stored one.
     */
    static final String WRITE = writeScript(System.getenv());
    static final byte[] WRITE_SHA = sha1(WRITE);

    private final URI uri;
    private final BooleanSupplier stopping;
    private Jedis jedis;

    RedisWriter(String url, BooleanSupplier stopping) {
        this.uri = URI.create(url);
        this.stopping = stopping;
    }

    List<byte[]> mget(List<byte[]> keys) {
        return retry("lookup", jedis -> jedis.mget(keys.toArray(new byte[0][])));
    }

    @SuppressWarnings("unchecked")
    List<Object> write(List<byte[]> keys, List<byte[]> args) {
        return retry("store", jedis -> (List<Object>) jedis.evalsha(WRITE_SHA, keys, args));
    }

    /** Transient errors retry with backoff (nothing is skipped), until the worker stops. */
    private <T> T retry(String what, Function<Jedis, T> step) {
        long delayMs = 100;
        while (true) {
            try {
                return step.apply(connection());
            } catch (JedisNoScriptException exc) { // Redis restarted: load the script again
                jedis.scriptLoad(WRITE.getBytes(StandardCharsets.UTF_8));
            } catch (JedisConnectionException exc) {
                if (stopping.getAsBoolean()) {
                    throw exc;
                }
                System.err.printf("kstreams: %s failed (%s); retrying in %.1fs%n", what, exc.getMessage(),
                        delayMs / 1000.0);
                close();
                try {
                    Thread.sleep(delayMs);
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                    throw exc;
                }
                delayMs = Math.min(delayMs * 2, 5000);
            }
        }
    }

    private Jedis connection() {
        if (jedis == null) {
            Jedis fresh = new Jedis(uri);
            fresh.scriptLoad(WRITE.getBytes(StandardCharsets.UTF_8));
            jedis = fresh;
        }
        return jedis;
    }

    @Override
    public void close() {
        if (jedis != null) {
            try {
                jedis.close();
            } catch (RuntimeException ignored) {
                // a broken connection: nothing to do
            }
            jedis = null;
        }
    }

    private static String writeScript(Map<String, String> env) {
        String script = env.get("KSTREAMS_WRITE_SCRIPT");
        if (script == null || script.isBlank()) {
            throw new IllegalArgumentException(
                    "KSTREAMS_WRITE_SCRIPT is not set (bench/compare.py sets it from bench/impl_ceiling.py)");
        }
        return script;
    }

    private static byte[] sha1(String script) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-1").digest(script.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(digest).getBytes(StandardCharsets.US_ASCII);
        } catch (NoSuchAlgorithmException exc) {
            throw new IllegalStateException(exc);
        }
    }
}
