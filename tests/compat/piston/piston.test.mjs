// Sandlab's Piston v2 API (`GET /api/v2/runtimes`, `POST /api/v2/execute`, the
// `/api/v2/connect` WebSocket) driven by the unchanged `piston-client` from npm, as a
// Piston user's code calls it, and by `ws` for the interactive protocol. The server is at
// $SANDLAB_URL with anonymous execution on (piston-client sends no credentials).
// Run by scripts/compat.sh; by hand: SANDLAB_URL=http://127.0.0.1:8080 node --test tests/compat/piston/
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import piston from "piston-client";
import WebSocket from "ws";

const URL_ = process.env.SANDLAB_URL;
if (!URL_) {
  throw new Error("SANDLAB_URL is not set (the URL of a running `sandlab serve`)");
}
const client = piston({ server: URL_ });

/** Runs `code` through piston-client and fails the test on a transport or API error. */
async function run(language, code, config = {}) {
  const result = await client.execute(language, code, config);
  // piston-client never throws: it answers `{success: false, error}` instead, and an API
  // error is Piston's `{message}`.
  assert.notEqual(result.success, false, `piston-client failed: ${result.error}`);
  assert.ok(result.run, `no run stage in ${JSON.stringify(result)}`);
  assert.equal(result.language, language);
  return result;
}

/** A stage's fields as Piston reports them. */
function assertStageShape(stage) {
  for (const key of ["stdout", "stderr", "output"]) {
    assert.equal(typeof stage[key], "string", `${key} of ${JSON.stringify(stage)}`);
  }
  assert.ok("code" in stage && "signal" in stage, JSON.stringify(stage));
}

const programs = {
  python: {
    hello: 'print("hello, world")\n',
    stdin: "import sys\nfor line in sys.stdin:\n    print(line.strip().upper())\n",
    args: "import sys\nprint(' '.join(sys.argv[1:]))\n",
    runtimeError: 'import sys\nprint("before")\nsys.exit(3)\n',
    timeout: "while True:\n    pass\n",
  },
  "c++": {
    hello: '#include <iostream>\nint main() { std::cout << "hello, world" << std::endl; return 0; }\n',
    stdin:
      "#include <iostream>\n#include <string>\n#include <cctype>\n" +
      "int main() { std::string l; while (std::getline(std::cin, l)) { for (auto &c : l) c = std::toupper(c); std::cout << l << '\\n'; } }\n",
    args:
      "#include <iostream>\nint main(int argc, char **argv) { for (int i = 1; i < argc; i++) std::cout << argv[i] << (i + 1 < argc ? ' ' : '\\n'); }\n",
    runtimeError: '#include <iostream>\nint main() { std::cout << "before" << std::endl; return 3; }\n',
    compileError: "#include <string>\nint main() { std::string s = 42; return s; }\n",
    timeout: "int main() { volatile unsigned long n = 0; for (;;) n++; }\n",
  },
  java: {
    hello: 'public class Main { public static void main(String[] a) { System.out.println("hello, world"); } }\n',
    stdin:
      "import java.io.*;\npublic class Main { public static void main(String[] a) throws IOException {\n" +
      "  BufferedReader in = new BufferedReader(new InputStreamReader(System.in));\n" +
      "  for (String l; (l = in.readLine()) != null; ) System.out.println(l.toUpperCase());\n} }\n",
    args: 'public class Main { public static void main(String[] a) { System.out.println(String.join(" ", a)); } }\n',
    runtimeError:
      'public class Main { public static void main(String[] a) { System.out.println("before"); System.exit(3); } }\n',
    compileError: 'public class Main { public static void main(String[] a) { int n = "nope"; } }\n',
    timeout: "public class Main { public static void main(String[] a) { long n = 0; while (true) { n++; if (n == Long.MIN_VALUE) System.out.println(n); } } }\n",
  },
};
const compiled = new Set(["c++", "java"]);

test("runtimes lists python, c++ and java", async () => {
  const runtimes = await client.runtimes();
  assert.notEqual(runtimes.success, false, `piston-client failed: ${runtimes.error}`);
  assert.ok(Array.isArray(runtimes), JSON.stringify(runtimes));
  for (const name of ["python", "c++", "java"]) {
    const rt = runtimes.find((r) => r.language === name);
    assert.ok(rt, `${name} is not in ${runtimes.map((r) => r.language).join(", ")}`);
    assert.equal(typeof rt.version, "string");
    assert.ok(Array.isArray(rt.aliases));
  }
});

for (const [language, p] of Object.entries(programs)) {
  describe(language, () => {
    test("hello world", async () => {
      const r = await run(language, p.hello);
      assertStageShape(r.run);
      assert.equal(r.run.stdout, "hello, world\n");
      assert.equal(r.run.output, "hello, world\n");
      assert.equal(r.run.stderr, "");
      assert.equal(r.run.code, 0);
      assert.equal(r.run.signal, null);
      if (compiled.has(language)) {
        assertStageShape(r.compile);
        assert.equal(r.compile.code, 0, JSON.stringify(r.compile));
      } else {
        assert.equal(r.compile, undefined, "an interpreted language has no compile stage");
      }
    });

    test("reads stdin", async () => {
      const r = await run(language, p.stdin, { stdin: "first line\nsecond\n" });
      assert.equal(r.run.stdout, "FIRST LINE\nSECOND\n", JSON.stringify(r.run));
      assert.equal(r.run.code, 0);
    });

    test("gets piston-client's default args", async () => {
      // piston-client sends args ["1", "2", "3"] unless told otherwise.
      const r = await run(language, p.args);
      assert.equal(r.run.stdout, "1 2 3\n", JSON.stringify(r.run));
      const own = await run(language, p.args, { args: ["a b", "c"] });
      assert.equal(own.run.stdout, "a b c\n", JSON.stringify(own.run));
    });

    test("runtime error: a non-zero exit code", async () => {
      const r = await run(language, p.runtimeError);
      assert.equal(r.run.stdout, "before\n");
      assert.equal(r.run.code, 3, JSON.stringify(r.run));
      assert.equal(r.run.signal, null);
    });

    if (p.compileError) {
      test("compile error", async () => {
        const r = await run(language, p.compileError);
        assert.ok(r.compile, JSON.stringify(r));
        assert.notEqual(r.compile.code, 0, JSON.stringify(r.compile));
        assert.ok(r.compile.stderr.length > 0 || r.compile.stdout.length > 0, "the compiler says nothing");
        // The program did not run.
        assert.ok(r.run.code !== 0, `the run stage looks ok: ${JSON.stringify(r.run)}`);
        assert.equal(r.run.stdout, "");
      });
    }

    test("timeout (runTimeout: 1000)", async () => {
      const started = Date.now();
      const r = await run(language, p.timeout, { runTimeout: 1000 });
      const took = Date.now() - started;
      assert.ok(r.run.signal === "SIGKILL" || r.run.status === "TO", JSON.stringify(r.run));
      assert.notEqual(r.run.code, 0);
      assert.ok(took < 30_000, `the timed-out run took ${took} ms`);
    });
  });
}

test("an unknown language is Piston's 400 {message}", async () => {
  const r = await client.execute({ language: "no-such-language", version: "1", files: [{ content: "x" }] });
  assert.equal(typeof r.message, "string", JSON.stringify(r));
  assert.match(r.message, /runtime is unknown/);
});

/** Opens the interactive WebSocket and collects its messages. */
function connect() {
  const ws = new WebSocket(`${URL_.replace(/^http/, "ws").replace(/\/$/, "")}/api/v2/connect`);
  const messages = [];
  const waiters = [];
  let closed = null;
  const check = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      const found = messages.find(w.pred);
      if (found || closed) {
        waiters.splice(i, 1);
        clearTimeout(w.timer);
        if (found) w.resolve(found);
        else w.reject(new Error(`closed (${closed.code} ${closed.reason}) before ${w.what}; got ${JSON.stringify(messages)}`));
      }
    }
  };
  ws.on("message", (data) => {
    messages.push(JSON.parse(data.toString()));
    check();
  });
  const closedP = new Promise((resolve) => {
    ws.on("close", (code, reason) => {
      closed = { code, reason: reason.toString() };
      check();
      resolve(closed);
    });
  });
  const opened = new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
  });
  /** The first message (already received or to come) matching `pred`. */
  const waitFor = (what, pred, ms = 20_000) =>
    new Promise((resolve, reject) => {
      const w = { what, pred, resolve, reject };
      w.timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(messages)}`));
      }, ms);
      waiters.push(w);
      check();
    });
  const send = (msg) => ws.send(JSON.stringify(msg));
  return { ws, messages, opened, closed: closedP, waitFor, send };
}

const stdoutText = (messages) =>
  messages
    .filter((m) => m.type === "data" && m.stream === "stdout")
    .map((m) => m.data)
    .join("");

test("WebSocket /api/v2/connect: interactive python", async () => {
  const c = connect();
  await c.opened;
  const program =
    "import sys\n" +
    "while True:\n" +
    "    line = sys.stdin.readline()\n" +
    "    if not line:\n" +
    "        break\n" +
    "    print('echo: ' + line.strip(), flush=True)\n" +
    "print('bye', flush=True)\n";
  c.send({ type: "init", language: "python", version: "*", files: [{ content: program }], run_timeout: 20000 });
  const runtime = await c.waitFor("the runtime message", (m) => m.type === "runtime");
  assert.equal(runtime.language, "python");
  await c.waitFor("the run stage", (m) => m.type === "stage" && m.stage === "run");

  // Each line is echoed while the program still runs, before the next is sent.
  for (const word of ["one", "two", "three"]) {
    c.send({ type: "data", stream: "stdin", data: `${word}\n` });
    await c.waitFor(`the echo of ${word}`, () => stdoutText(c.messages).includes(`echo: ${word}\n`));
    assert.ok(!c.messages.some((m) => m.type === "exit"), "the program ended before its input did");
  }
  assert.equal(stdoutText(c.messages), "echo: one\necho: two\necho: three\n");

  c.send({ type: "eof" });
  const exit = await c.waitFor("the run's exit", (m) => m.type === "exit" && m.stage === "run");
  assert.equal(exit.code, 0, JSON.stringify(exit));
  const closed = await c.closed;
  assert.equal(closed.code, 4999, `close ${closed.code} ${closed.reason}`);
  assert.equal(stdoutText(c.messages), "echo: one\necho: two\necho: three\nbye\n");
  assert.ok(!c.messages.some((m) => m.type === "error"), JSON.stringify(c.messages));
});

test("WebSocket /api/v2/connect: c++ compiles, then runs with stdin", async () => {
  const c = connect();
  await c.opened;
  c.send({ type: "init", language: "c++", version: "*", files: [{ content: programs["c++"].stdin }] });
  await c.waitFor("the compile exit", (m) => m.type === "exit" && m.stage === "compile");
  await c.waitFor("the run stage", (m) => m.type === "stage" && m.stage === "run");
  c.send({ type: "data", stream: "stdin", data: "abc\n" });
  await c.waitFor("the echo", () => stdoutText(c.messages) === "ABC\n");
  c.send({ type: "eof" });
  const exit = await c.waitFor("the run's exit", (m) => m.type === "exit" && m.stage === "run");
  assert.equal(exit.code, 0, JSON.stringify(exit));
  assert.equal((await c.closed).code, 4999);
  const stages = c.messages.filter((m) => m.type === "stage").map((m) => m.stage);
  assert.deepEqual(stages, ["compile", "run"]);
});

test("WebSocket /api/v2/connect: a SIGKILL signal ends the program", async () => {
  const c = connect();
  await c.opened;
  c.send({ type: "init", language: "python", version: "3", files: [{ content: "import time\nprint('up', flush=True)\ntime.sleep(60)\n" }], run_timeout: 30000 });
  await c.waitFor("the program's first line", () => stdoutText(c.messages) === "up\n");
  c.send({ type: "signal", signal: "SIGKILL" });
  const exit = await c.waitFor("the run's exit", (m) => m.type === "exit" && m.stage === "run");
  assert.equal(exit.signal, "SIGKILL", JSON.stringify(exit));
  assert.equal((await c.closed).code, 4999);
});
