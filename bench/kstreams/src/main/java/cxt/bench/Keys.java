package cxt.bench;

import java.util.Map;

/**
 * The Redis keys this peer touches.  The layout is store/keys.py's alone: bench/compare.py
 * passes each key as a template (KSTREAMS_KEY_<NAME>, the id replaced by {@link #PLACEHOLDER}),
 * made by store.keys.Keys itself, and the provisional profiles' mark (domain.identity).
 */
record Keys(Template timeline, Template entries, Template alert, Template identity, String provisionalMark) {
    static final String PLACEHOLDER = "@ID@";

    record Template(String head, String tail) {
        String of(String id) {
            return head + id + tail;
        }

        static Template parse(String name, String template) {
            int at = template.indexOf(PLACEHOLDER);
            if (at < 0) {
                throw new IllegalArgumentException(name + " has no " + PLACEHOLDER + ": " + template);
            }
            return new Template(template.substring(0, at), template.substring(at + PLACEHOLDER.length()));
        }
    }

    static Keys fromEnv(Map<String, String> env) {
        return new Keys(template(env, "KSTREAMS_KEY_TIMELINE"), template(env, "KSTREAMS_KEY_ENTRIES"),
                template(env, "KSTREAMS_KEY_ALERT"), template(env, "KSTREAMS_KEY_IDENTITY"),
                required(env, "KSTREAMS_PROVISIONAL_MARK"));
    }

    private static Template template(Map<String, String> env, String name) {
        return Template.parse(name, required(env, name));
    }

    private static String required(Map<String, String> env, String name) {
        String value = env.get(name);
        if (value == null || value.isEmpty()) {
            throw new IllegalArgumentException(name + " is not set (bench/compare.py sets it from store/keys.py)");
        }
        return value;
    }
}
