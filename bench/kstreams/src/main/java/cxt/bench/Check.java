package cxt.bench;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The ceiling's validation (bench/impl_ceiling.py check), the same checks in the same order
 * with the same reason codes (schemas/validate.py) and terse messages.
 */
final class Check {
    static final String TOO_LARGE = "too_large";
    static final String INVALID_JSON = "invalid_json";
    static final String NOT_AN_OBJECT = "not_an_object";
    static final String SCHEMA_VIOLATION = "schema_violation";
    static final String CHANNEL_MISMATCH = "channel_mismatch";
    static final String INVALID_TIMESTAMP = "invalid_timestamp";
    static final String NO_CUSTOMER = "no_customer";

    static final int DEFAULT_SCALE_MIN = 1;
    static final int DEFAULT_SCALE_MAX = 5;

    private Check() {}

    /** A record to dead-letter. */
    static final class Bad extends Exception {
        final String reason;

        Bad(String reason, String message) {
            super(message, null, false, false); // no stack trace: this is a value, not a bug
            this.reason = reason;
        }
    }

    /** A valid event: the parsed envelope, occurred_at in epoch ms, identity keys (none if it names its customer_id). */
    record Valid(JsonNode event, long occurredMs, List<String> keys) {}

    static Valid check(ObjectMapper json, byte[] value, String channel, int maxBytes) throws Bad {
        if (value != null && value.length > maxBytes) {
            throw new Bad(TOO_LARGE, "value is " + value.length + " bytes");
        }
        JsonNode event;
        try {
            event = json.readTree(value == null ? new byte[0] : value);
        } catch (JacksonException exc) {
            throw new Bad(INVALID_JSON, exc.getOriginalMessage());
        } catch (java.io.IOException exc) {
            throw new Bad(INVALID_JSON, String.valueOf(exc.getMessage()));
        }
        if (event == null || event.isMissingNode()) {
            throw new Bad(INVALID_JSON, "Input is a zero-length, empty document");
        }
        if (!event.isObject()) {
            throw new Bad(NOT_AN_OBJECT, "expected a JSON object");
        }
        JsonNode kind = event.get("type");
        JsonNode when = event.get("occurred_at");
        JsonNode payload = event.get("payload");
        if (!(isText(event.get("event_id")) && isText(kind) && isText(when)
                && payload != null && payload.isObject())) {
            throw new Bad(SCHEMA_VIOLATION, "event_id, type, occurred_at (strings), payload (object)");
        }
        String type = kind.textValue();
        int dot = type.indexOf('.');
        if (!(dot < 0 ? type : type.substring(0, dot)).equals(channel)) {
            throw new Bad(CHANNEL_MISMATCH, "type '" + type + "' on the " + channel + " topic");
        }
        long occurredMs = epochMs(when.textValue());
        List<String> keys = List.of();
        if (!isText(event.get("customer_id"))) {
            keys = identityKeys(event.get("identity"));
            if (keys.isEmpty()) {
                throw new Bad(NO_CUSTOMER, "no customer_id and no identity");
            }
        }
        if (channel.equals("survey")) {
            JsonNode score = payload.get("score");
            if (score == null || !score.isIntegralNumber()) {
                throw new Bad(SCHEMA_VIOLATION, "payload.score must be an integer");
            }
            scaleMin(payload); // throws on a non-numeric scale, as survey_scale does
        }
        return new Valid(event, occurredMs, keys);
    }

    /** True when the valid survey's score is one of the two lowest points of its scale (domain.surveys). */
    static boolean isBottom2Box(JsonNode payload) throws Bad {
        long score = payload.get("score").asLong();
        long low = scaleMin(payload);
        return low <= score && score <= low + 1;
    }

    /** survey_scale(payload)[0]: the scale's minimum (default 1), both ends converted like int(). */
    static long scaleMin(JsonNode payload) throws Bad {
        long low = scalePoint(payload.get("scale_min"), DEFAULT_SCALE_MIN);
        scalePoint(payload.get("scale_max"), DEFAULT_SCALE_MAX);
        return low;
    }

    private static long scalePoint(JsonNode node, int fallback) throws Bad {
        if (node == null || node.isNull()) {
            return fallback;
        }
        if (node.isNumber()) {
            return node.asLong(); // int() truncates a float
        }
        if (node.isBoolean()) {
            return node.booleanValue() ? 1 : 0;
        }
        if (node.isTextual()) {
            try {
                return Long.parseLong(node.textValue().strip());
            } catch (NumberFormatException exc) {
                throw new Bad(SCHEMA_VIOLATION, "ValueError(\"invalid literal for int() with base 10: '"
                        + node.textValue() + "'\")");
            }
        }
        throw new Bad(SCHEMA_VIOLATION, "TypeError(\"int() argument must be a string, a bytes-like object "
                + "or a real number\")");
    }

    /** occurred_at in epoch ms (floor); an offset is required, as in the ceiling. */
    static long epochMs(String when) throws Bad {
        String text = when.length() > 10 && when.charAt(10) == ' '
                ? when.substring(0, 10) + 'T' + when.substring(11) : when;
        try {
            return OffsetDateTime.parse(text, DateTimeFormatter.ISO_OFFSET_DATE_TIME).toInstant().toEpochMilli();
        } catch (DateTimeParseException | ArithmeticException exc) {
            throw new Bad(INVALID_TIMESTAMP, "occurred_at '" + when + "'");
        }
    }

    /** schemas.validate.identity_keys: normalised identifier keys in priority order phone, email, social. */
    static List<String> identityKeys(JsonNode identity) {
        List<String> keys = new ArrayList<>(1);
        if (identity == null || !identity.isObject()) {
            return keys;
        }
        JsonNode phone = identity.get("phone");
        if (isText(phone)) {
            String normal = phone.textValue().replaceAll("(?U)\\s+", "");
            if (!normal.isEmpty()) {
                keys.add("phone:" + normal);
            }
        }
        JsonNode email = identity.get("email");
        if (isText(email)) {
            String normal = email.textValue().strip().toLowerCase(Locale.ROOT);
            if (!normal.isEmpty()) {
                keys.add("email:" + normal);
            }
        }
        JsonNode social = identity.get("social");
        if (social != null && social.isObject() && isText(social.get("network")) && isText(social.get("handle"))) {
            String network = social.get("network").textValue().strip().toLowerCase(Locale.ROOT);
            String handle = stripAt(social.get("handle").textValue().strip()).strip().toLowerCase(Locale.ROOT);
            if (!network.isEmpty() && !handle.isEmpty()) {
                keys.add("social:" + network + ":" + handle);
            }
        }
        return keys;
    }

    private static String stripAt(String text) {
        int i = 0;
        while (i < text.length() && text.charAt(i) == '@') {
            i++;
        }
        return text.substring(i);
    }

    private static boolean isText(JsonNode node) {
        return node != null && node.isTextual();
    }
}
