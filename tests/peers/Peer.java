// The Java client (kafka-clients) as the reference peer of the interoperability tests. Built
// at test time against the broker's own jars (javac, or `java -cp 'LIBS/*' Peer.java ...`);
// talks JSON lines: records in on stdin, one JSON object per record or event out on stdout.
//
//   produce  --bootstrap B --topic T [--transaction commit|abort] [--prop k=v ...]
//            stdin: {"key_b64","value_b64","headers":[[name,b64|null]],"partition"?,"timestamp"?}
//            stdout, in input order: {"i","partition","offset","timestamp"} or {"i","error"};
//            with --transaction (and --prop transactional.id=...) all records go in one
//            transaction, committed or aborted at the end
//   consume  --bootstrap B --topic T --count N [--group G] [--timeout S] [--prop k=v ...]
//            without a group every partition is read from the beginning (--count end: up to
//            the end offsets when it starts, whatever their sum); one line per record:
//            {"topic","partition","offset","key_b64","value_b64","headers","timestamp",
//             "timestamp_type"}; exits 1 if fewer than N arrived within the timeout
//   group    --bootstrap B --group G --topics T[,T] [--duration S] [--commit-every N]
//            [--session-timeout-ms MS] [--heartbeat-ms MS] [--prop k=v ...]
//            a group member committing synchronously after every N records and on revocation;
//            events {"event":"assigned"|"revoked","partitions":[[t,p]]}, {"event":"record",...,
//            "t"}, {"event":"committed","offsets":[[t,p,next]],"t"}, {"event":"error"},
//            {"event":"closed","received"}; "t" is wall-clock seconds. Stops (commits, leaves)
//            on stdin EOF or {"cmd":"stop"}; {"cmd":"crash"} exits without either.
//   lag      --bootstrap B --group G --topic T [--timeout S]
//            joins the group as a fresh member, waits for its assignment and prints per
//            partition {"partition","committed","position","end","lag"}, then
//            {"event":"done","received":N} (records that arrived within 2 s); no commit.
//   admin    --bootstrap B --op partitions --topic T --count N   (CreatePartitions up to N)
//            --op describe --topic T   one line per partition {"partition","leader","isr","replicas"}
//            --op coordinator --group G   {"coordinator": node id}
//            --op delete --topic T   {"deleted": T}

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class Peer {
    static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] argv) throws Exception {
        if (argv.length == 0) {
            throw new IllegalArgumentException("usage: Peer produce|consume|group|lag --option value ...");
        }
        Map<String, String> a = new HashMap<>();
        Properties extra = new Properties();
        for (int i = 1; i + 1 < argv.length; i += 2) {
            if (argv[i].equals("--prop")) {
                String[] kv = argv[i + 1].split("=", 2);
                extra.put(kv[0], kv[1]);
            } else {
                a.put(argv[i].substring(2), argv[i + 1]);
            }
        }
        switch (argv[0]) {
            case "produce" -> produce(a, extra);
            case "consume" -> System.exit(consume(a, extra));
            case "group" -> group(a, extra);
            case "lag" -> lag(a, extra);
            case "admin" -> admin(a, extra);
            default -> throw new IllegalArgumentException("unknown command " + argv[0]);
        }
    }

    static void emit(ObjectNode o) {
        synchronized (System.out) {
            System.out.println(o.toString());
            System.out.flush();
        }
    }

    static String b64(byte[] b) {
        return b == null ? null : Base64.getEncoder().encodeToString(b);
    }

    static byte[] unb64(JsonNode n) {
        return n == null || n.isNull() ? null : Base64.getDecoder().decode(n.asText());
    }

    static ObjectNode record(ConsumerRecord<byte[], byte[]> r) {
        ObjectNode o = JSON.createObjectNode();
        o.put("topic", r.topic()).put("partition", r.partition()).put("offset", r.offset());
        o.put("key_b64", b64(r.key())).put("value_b64", b64(r.value()));
        ArrayNode hs = o.putArray("headers");
        for (Header h : r.headers()) {
            hs.addArray().add(h.key()).add(b64(h.value()));
        }
        o.put("timestamp", r.timestamp()).put("timestamp_type", r.timestampType().toString());
        return o;
    }

    static KafkaConsumer<byte[], byte[]> consumer(Map<String, String> a, Properties extra, String group) {
        Properties p = new Properties();
        p.put("bootstrap.servers", a.get("bootstrap"));
        p.put("key.deserializer", ByteArrayDeserializer.class.getName());
        p.put("value.deserializer", ByteArrayDeserializer.class.getName());
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        p.put("client.id", "java-peer");
        if (group != null) {
            p.put("group.id", group);
        }
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    static void produce(Map<String, String> a, Properties extra) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", a.get("bootstrap"));
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        p.put("linger.ms", "5");
        p.put("client.id", "java-peer");
        p.putAll(extra);
        String topic = a.get("topic");
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        String transaction = a.get("transaction");
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            if (transaction != null) {
                producer.initTransactions();
                producer.beginTransaction();
            }
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            for (String line; (line = in.readLine()) != null; ) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode j = JSON.readTree(line);
                RecordHeaders headers = new RecordHeaders();
                for (JsonNode h : j.path("headers")) {
                    headers.add(h.get(0).asText(), unb64(h.get(1)));
                }
                Integer partition = j.hasNonNull("partition") ? j.get("partition").asInt() : null;
                Long ts = j.hasNonNull("timestamp") ? j.get("timestamp").asLong() : null;
                sent.add(producer.send(new ProducerRecord<>(topic, partition, ts, unb64(j.get("key_b64")),
                        unb64(j.get("value_b64")), headers)));
            }
            producer.flush();
            if ("commit".equals(transaction)) {
                producer.commitTransaction();
            } else if ("abort".equals(transaction)) {
                producer.abortTransaction();
            }
            for (int i = 0; i < sent.size(); i++) {
                ObjectNode o = JSON.createObjectNode().put("i", i);
                try {
                    RecordMetadata m = sent.get(i).get();
                    o.put("partition", m.partition()).put("offset", m.offset()).put("timestamp", m.timestamp());
                } catch (Exception e) {
                    o.put("error", String.valueOf(e.getCause() != null ? e.getCause() : e));
                }
                emit(o);
            }
        }
    }

    static int consume(Map<String, String> a, Properties extra) {
        String topic = a.get("topic");
        String group = a.get("group");
        boolean toEnd = "end".equals(a.get("count"));
        int count = toEnd ? Integer.MAX_VALUE : Integer.parseInt(a.get("count"));
        long deadline = System.currentTimeMillis() + (long) (Double.parseDouble(a.getOrDefault("timeout", "60")) * 1000);
        int got = 0;
        try (KafkaConsumer<byte[], byte[]> c = consumer(a, extra, group)) {
            if (group != null) {
                c.subscribe(List.of(topic));
            } else {
                List<TopicPartition> parts = new ArrayList<>();
                while (parts.isEmpty() && System.currentTimeMillis() < deadline) {
                    var infos = c.partitionsFor(topic, Duration.ofSeconds(10));
                    if (infos != null) {
                        infos.forEach(i -> parts.add(new TopicPartition(topic, i.partition())));
                    }
                }
                c.assign(parts);
                c.seekToBeginning(parts);
                if (toEnd) {
                    count = (int) c.endOffsets(parts).values().stream().mapToLong(Long::longValue).sum();
                }
            }
            while (got < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    emit(record(r));
                    got++;
                }
            }
        }
        if (got < count) {
            System.err.println("only " + got + " of " + count + " records arrived");
            return 1;
        }
        return 0;
    }

    static void group(Map<String, String> a, Properties extra) throws Exception {
        Properties p = new Properties();
        p.put("session.timeout.ms", a.getOrDefault("session-timeout-ms", "10000"));
        p.put("heartbeat.interval.ms", a.getOrDefault("heartbeat-ms", "1000"));
        p.putAll(extra);
        int commitEvery = Integer.parseInt(a.getOrDefault("commit-every", "100"));
        long deadline = System.currentTimeMillis() + (long) (Double.parseDouble(a.getOrDefault("duration", "60")) * 1000);
        LinkedBlockingQueue<String> commands = new LinkedBlockingQueue<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                for (String line; (line = in.readLine()) != null; ) {
                    if (!line.isBlank()) {
                        commands.add(JSON.readTree(line).path("cmd").asText());
                    }
                }
            } catch (Exception e) {
                // stdin gone: stop as on EOF
            }
            commands.add("stop");
        });
        reader.setDaemon(true);
        reader.start();
        Map<TopicPartition, OffsetAndMetadata> uncommitted = new HashMap<>();
        int received = 0;
        try (KafkaConsumer<byte[], byte[]> c = consumer(a, p, a.get("group"))) {
            Runnable commitAll = () -> commit(c, uncommitted, uncommitted.keySet());
            c.subscribe(List.of(a.get("topics").split(",")), new ConsumerRebalanceListener() {
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                    commit(c, uncommitted, parts);
                    parts.forEach(uncommitted::remove);
                    emit(partitions("revoked", parts));
                }

                public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                    emit(partitions("assigned", c.assignment()));
                }

                public void onPartitionsLost(Collection<TopicPartition> parts) {
                    parts.forEach(uncommitted::remove);
                    emit(partitions("revoked", parts));
                }
            });
            int since = 0;
            while (System.currentTimeMillis() < deadline) {
                String cmd = commands.poll();
                if ("stop".equals(cmd)) {
                    break;
                }
                if ("crash".equals(cmd)) {
                    System.out.flush();
                    Runtime.getRuntime().halt(3);
                }
                if ("commit".equals(cmd)) {
                    commitAll.run();
                }
                try {
                    for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(100))) {
                        emit(record(r).put("event", "record").put("t", now()));
                        uncommitted.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                        received++;
                        if (commitEvery > 0 && ++since >= commitEvery) {
                            commitAll.run();
                            since = 0;
                        }
                    }
                } catch (Exception e) {
                    emit(JSON.createObjectNode().put("event", "error").put("error", e.toString()));
                }
            }
            commitAll.run();
        }
        emit(JSON.createObjectNode().put("event", "closed").put("received", received));
    }

    static double now() {
        return System.currentTimeMillis() / 1000.0;
    }

    static ObjectNode partitions(String event, Collection<TopicPartition> parts) {
        ObjectNode o = JSON.createObjectNode().put("event", event);
        ArrayNode ps = o.putArray("partitions");
        parts.stream().sorted((x, y) -> x.toString().compareTo(y.toString()))
                .forEach(tp -> ps.addArray().add(tp.topic()).add(tp.partition()));
        return o;
    }

    /** Commits what was received of `parts` (synchronously); a commit never covers a record not printed. */
    static void commit(KafkaConsumer<byte[], byte[]> c, Map<TopicPartition, OffsetAndMetadata> uncommitted,
                       Collection<TopicPartition> parts) {
        Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
        for (TopicPartition tp : parts) {
            if (uncommitted.containsKey(tp)) {
                offs.put(tp, uncommitted.get(tp));
            }
        }
        if (offs.isEmpty()) {
            return;
        }
        try {
            c.commitSync(offs);
            ObjectNode o = JSON.createObjectNode().put("event", "committed").put("t", now());
            ArrayNode arr = o.putArray("offsets");
            offs.forEach((tp, om) -> arr.addArray().add(tp.topic()).add(tp.partition()).add(om.offset()));
            emit(o);
            offs.keySet().forEach(uncommitted::remove);
        } catch (Exception e) {
            emit(JSON.createObjectNode().put("event", "error").put("error", "commit: " + e));
        }
    }

    static void lag(Map<String, String> a, Properties extra) {
        long deadline = System.currentTimeMillis() + (long) (Double.parseDouble(a.getOrDefault("timeout", "60")) * 1000);
        int received = 0;
        try (KafkaConsumer<byte[], byte[]> c = consumer(a, extra, a.get("group"))) {
            c.subscribe(List.of(a.get("topic")));
            while (c.assignment().isEmpty() && System.currentTimeMillis() < deadline) {
                received += c.poll(Duration.ofMillis(100)).count();
            }
            long until = System.currentTimeMillis() + 2000;
            while (System.currentTimeMillis() < until) {
                received += c.poll(Duration.ofMillis(100)).count();
            }
            Set<TopicPartition> parts = c.assignment();
            Map<TopicPartition, OffsetAndMetadata> committed = c.committed(parts);
            Map<TopicPartition, Long> ends = c.endOffsets(parts);
            for (TopicPartition tp : parts.stream().sorted((x, y) -> x.partition() - y.partition()).collect(Collectors.toList())) {
                OffsetAndMetadata cm = committed.get(tp);
                long position = c.position(tp);
                ObjectNode o = JSON.createObjectNode().put("partition", tp.partition());
                if (cm == null) {
                    o.putNull("committed");
                } else {
                    o.put("committed", cm.offset());
                }
                o.put("position", position).put("end", ends.get(tp)).put("lag", ends.get(tp) - (cm == null ? 0 : cm.offset()));
                emit(o);
            }
        }
        emit(JSON.createObjectNode().put("event", "done").put("received", received));
    }

    static void admin(Map<String, String> a, Properties extra) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", a.get("bootstrap"));
        p.put("client.id", "java-peer-admin");
        p.putAll(extra);
        String topic = a.get("topic");
        try (Admin admin = Admin.create(p)) {
            switch (a.get("op")) {
                case "partitions" -> {
                    int count = Integer.parseInt(a.get("count"));
                    admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(count))).all().get();
                    emit(JSON.createObjectNode().put("partitions", count));
                }
                case "describe" -> {
                    TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                    for (var info : d.partitions()) {
                        ObjectNode o = JSON.createObjectNode().put("partition", info.partition());
                        o.put("leader", info.leader() == null ? -1 : info.leader().id());
                        ArrayNode isr = o.putArray("isr");
                        info.isr().forEach(n -> isr.add(n.id()));
                        ArrayNode replicas = o.putArray("replicas");
                        info.replicas().forEach(n -> replicas.add(n.id()));
                        emit(o);
                    }
                }
                case "coordinator" -> {
                    var g = admin.describeConsumerGroups(List.of(a.get("group"))).all().get().get(a.get("group"));
                    emit(JSON.createObjectNode().put("coordinator", g.coordinator().id()));
                }
                case "delete" -> {
                    admin.deleteTopics(List.of(topic)).all().get();
                    emit(JSON.createObjectNode().put("deleted", topic));
                }
                default -> throw new IllegalArgumentException("unknown admin op " + a.get("op"));
            }
        }
    }
}
