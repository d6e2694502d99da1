"""Sandlab's Judge0 CE 1.13.1 API driven by the unchanged `judge0` client from PyPI.

The server is at $SANDLAB_URL and needs the API token in $SANDLAB_TOKEN, which Judge0's
clients send as `X-Auth-Token`. Run by scripts/compat.sh; by hand:

    SANDLAB_URL=http://127.0.0.1:8080 SANDLAB_TOKEN=sl_... pytest -q tests/compat/judge0
"""

import os
import uuid

import httpx
import judge0
import pytest
from judge0 import Status

URL = os.environ["SANDLAB_URL"].rstrip("/")
TOKEN = os.environ["SANDLAB_TOKEN"]

PYTHON, CPP, JAVA = 71, 54, 62

PROGRAMS = {
    PYTHON: {
        "hello": 'print("hello, world")\n',
        "upper": "import sys\nfor line in sys.stdin:\n    print(line.strip().upper())\n",
        "exit3": 'import sys\nprint("before")\nsys.exit(3)\n',
        "loop": "while True:\n    pass\n",
    },
    CPP: {
        "hello": '#include <iostream>\nint main() { std::cout << "hello, world" << std::endl; }\n',
        "upper": (
            "#include <cctype>\n#include <iostream>\n#include <string>\n"
            "int main() { std::string l; while (std::getline(std::cin, l)) {"
            " for (auto &c : l) c = std::toupper(c); std::cout << l << '\\n'; } }\n"
        ),
        "exit3": '#include <iostream>\nint main() { std::cout << "before" << std::endl; return 3; }\n',
        "loop": "int main() { volatile unsigned long n = 0; for (;;) n++; }\n",
        "compile_error": "#include <string>\nint main() { std::string s = 42; return s; }\n",
    },
    JAVA: {
        "hello": 'public class Main { public static void main(String[] a) { System.out.println("hello, world"); } }\n',
        "upper": (
            "import java.io.*;\n"
            "public class Main { public static void main(String[] a) throws IOException {\n"
            "  BufferedReader in = new BufferedReader(new InputStreamReader(System.in));\n"
            "  for (String l; (l = in.readLine()) != null; ) System.out.println(l.toUpperCase());\n"
            "} }\n"
        ),
        "exit3": 'public class Main { public static void main(String[] a) { System.out.println("before"); System.exit(3); } }\n',
        "loop": (
            "public class Main { public static void main(String[] a) { long n = 0;"
            " while (true) { n++; if (n == Long.MIN_VALUE) System.out.println(n); } } }\n"
        ),
        "compile_error": 'public class Main { public static void main(String[] a) { int n = "nope"; } }\n',
    },
}
LANGUAGES = pytest.mark.parametrize("lang", [PYTHON, CPP, JAVA], ids=["python", "c++", "java"])


def make_client(token=TOKEN):
    """A client as the library's docs make one for a self-hosted Judge0; it asks for
    /languages and /config_info at once. Waits give up after 120 s of polling."""
    headers = {} if token is None else {"X-Auth-Token": token}
    return judge0.Client(URL, headers=headers, retry_strategy=judge0.MaxWaitTime(120))


@pytest.fixture(scope="module")
def client():
    return make_client()


def finished(sub):
    assert sub.is_done(), f"not finished in time: {sub!r}"
    return sub


# ----- the server's description of itself


def test_about_version_and_config(client):
    assert client.version == "1.13.1"
    assert client.get_about()["version"] == "1.13.1"
    config = client.config  # parsed into the library's Config model: every key is there
    assert config.enable_batched_submissions
    assert config.max_submission_batch_size >= 2
    assert config.enable_wait_result


def test_languages(client):
    ids = {lang.id for lang in client.get_languages()}
    for lang in (PYTHON, CPP, JAVA):
        assert lang in ids, f"language {lang} is not in /languages: {sorted(ids)}"
        assert client.is_language_supported(lang)
    java = client.get_language(JAVA)
    assert java.id == JAVA and "Java" in java.name
    assert java.source_file == "Main.java"


def test_statuses(client):
    statuses = {s["id"]: s["description"] for s in client.get_statuses()}
    assert set(statuses) == set(range(1, 15))
    assert statuses[3] == "Accepted"
    assert statuses[11] == "Runtime Error (NZEC)"


@pytest.mark.parametrize(
    "alias,lang_id,program",
    [
        (judge0.PYTHON, PYTHON, PYTHON),
        (judge0.JAVA, JAVA, JAVA),
        pytest.param(
            judge0.CPP,
            52,
            CPP,
        ),
    ],
    ids=["PYTHON", "JAVA", "CPP"],
)
def test_language_aliases(client, alias, lang_id, program):
    """The library's aliases name Judge0 1.13.1's ids (its CPP is 52, "C++ (GCC 7.4.0)")."""
    assert client.get_language_id(alias) == lang_id
    assert client.is_language_supported(alias), (
        f"{alias!r} is id {lang_id}, which /languages does not list: "
        f"{sorted(lang.id for lang in client.languages)}"
    )
    sub = finished(judge0.run(client=client, source_code=PROGRAMS[program]["hello"], language=alias))
    assert sub.status == Status.ACCEPTED, sub
    assert sub.stdout == "hello, world\n"


# ----- running programs


@LANGUAGES
def test_hello_world(client, lang):
    sub = finished(judge0.run(client=client, source_code=PROGRAMS[lang]["hello"], language=lang))
    assert sub.status == Status.ACCEPTED, sub
    assert sub.stdout == "hello, world\n"
    assert sub.stderr is None
    assert sub.exit_code == 0
    assert sub.time is not None and sub.memory is not None
    assert sub.created_at is not None and sub.finished_at is not None


@LANGUAGES
def test_stdin(client, lang):
    sub = finished(
        judge0.run(client=client, source_code=PROGRAMS[lang]["upper"], language=lang, stdin="first line\nsecond\n")
    )
    assert sub.status == Status.ACCEPTED, sub
    assert sub.stdout == "FIRST LINE\nSECOND\n"


@LANGUAGES
def test_expected_output_accepted_and_wrong_answer(client, lang):
    # Two test cases: the library sends them as one batch and polls the batch.
    subs = judge0.run(
        client=client,
        source_code=PROGRAMS[lang]["upper"],
        language=lang,
        test_cases=[("abc\n", "ABC\n"), ("abc\n", "abd")],
    )
    assert len(subs) == 2
    accepted, wrong = (finished(s) for s in subs)
    assert accepted.status == Status.ACCEPTED, accepted
    assert wrong.status == Status.WRONG_ANSWER, wrong
    assert wrong.stdout == "ABC\n"
    assert wrong.expected_output == "abd"


@LANGUAGES
def test_runtime_error_nzec(client, lang):
    sub = finished(judge0.run(client=client, source_code=PROGRAMS[lang]["exit3"], language=lang))
    assert sub.status == Status.RUNTIME_ERROR_NZEC, sub
    assert sub.status.value == 11
    assert sub.exit_code == 3
    assert sub.stdout == "before\n"


@LANGUAGES
def test_time_limit_exceeded(client, lang):
    sub = finished(
        judge0.run(client=client, source_code=PROGRAMS[lang]["loop"], language=lang, cpu_time_limit=1)
    )
    assert sub.status == Status.TIME_LIMIT_EXCEEDED, sub
    assert sub.status.value == 5
    assert sub.cpu_time_limit == 1.0
    # cpu_time_limit plus the default cpu_extra_time (1 s), and some measuring slack.
    assert sub.time is not None and sub.time < 5, sub.time


@pytest.mark.parametrize("lang", [CPP, JAVA], ids=["c++", "java"])
def test_compilation_error(client, lang):
    sub = finished(judge0.run(client=client, source_code=PROGRAMS[lang]["compile_error"], language=lang))
    assert sub.status == Status.COMPILATION_ERROR, sub
    assert sub.status.value == 6
    assert sub.compile_output, sub
    assert sub.stdout is None


# ----- the lower-level calls: one submission, a batch


def test_create_submission_then_get(client):
    sub = judge0.Submission(source_code=PROGRAMS[CPP]["upper"], language=CPP, stdin="x y\n", expected_output="X Y")
    client.create_submission(sub)
    # Judge0's tokens are UUID v4s (the library only checks that when it makes a
    # Submission from a dict; create_submission sets the token as given).
    assert uuid.UUID(str(sub.token)).version == 4
    judge0.wait(client=client, submissions=sub)
    finished(sub)
    assert sub.status == Status.ACCEPTED, sub
    assert sub.stdout == "X Y\n"
    # Asking for some fields only.
    again = judge0.Submission(language=CPP)
    again.token = sub.token
    client.get_submission(again, fields=["stdout", "status"])
    assert again.stdout == "X Y\n" and again.status == Status.ACCEPTED
    assert again.time is None


def test_batch_create_and_get(client):
    subs = [
        judge0.Submission(source_code=PROGRAMS[PYTHON]["hello"], language=PYTHON),
        judge0.Submission(source_code=PROGRAMS[CPP]["upper"], language=CPP, stdin="batch\n"),
        judge0.Submission(source_code=PROGRAMS[JAVA]["exit3"], language=JAVA),
        judge0.Submission(source_code=PROGRAMS[CPP]["compile_error"], language=CPP),
    ]
    client.create_submissions(subs)
    tokens = [s.token for s in subs]
    assert all(t is not None for t in tokens) and len(set(tokens)) == len(tokens)
    judge0.wait(client=client, submissions=subs)
    for s in subs:
        finished(s)
    assert [s.status for s in subs] == [
        Status.ACCEPTED,
        Status.ACCEPTED,
        Status.RUNTIME_ERROR_NZEC,
        Status.COMPILATION_ERROR,
    ], subs
    assert subs[0].stdout == "hello, world\n"
    assert subs[1].stdout == "BATCH\n"
    # GET /submissions/batch again, for some fields only, into fresh Submissions.
    fresh = [judge0.Submission(language=s.language) for s in subs]
    for f, s in zip(fresh, subs):
        f.token = s.token
    client.get_submissions(fresh, fields=["status", "stdout", "token"])
    assert [f.status for f in fresh] == [s.status for s in subs]
    assert [str(f.token) for f in fresh] == [str(s.token) for s in subs]
    assert fresh[1].stdout == "BATCH\n"
    assert fresh[1].time is None  # not asked for


def test_async_run_then_wait(client):
    subs = judge0.async_run(
        client=client,
        source_code=PROGRAMS[PYTHON]["upper"],
        language=PYTHON,
        test_cases=[("a\n", "A"), ("b\n", "B"), ("c\n", "C")],
    )
    judge0.wait(client=client, submissions=subs)
    assert [finished(s).status for s in subs] == [Status.ACCEPTED] * 3
    assert [s.stdout for s in subs] == ["A\n", "B\n", "C\n"]


# ----- the HTTP the library does not use: wait=true, plain text, errors


def test_wait_true_plain_text():
    r = httpx.post(
        f"{URL}/submissions",
        params={"wait": "true", "base64_encoded": "false", "fields": "stdout,status_id,language_id"},
        headers={"X-Auth-Token": TOKEN},
        json={"source_code": PROGRAMS[PYTHON]["upper"], "language_id": PYTHON, "stdin": "wait\n"},
        timeout=120,
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"stdout": "WAIT\n", "status_id": 3, "language_id": PYTHON}


def test_unknown_language_is_422():
    r = httpx.post(
        f"{URL}/submissions",
        params={"base64_encoded": "false"},
        headers={"X-Auth-Token": TOKEN},
        json={"source_code": "x", "language_id": 999999},
    )
    assert r.status_code == 422, r.text
    assert "language_id" in r.json()


def test_unknown_token_is_404():
    r = httpx.get(f"{URL}/submissions/00000000-0000-4000-8000-000000000000", headers={"X-Auth-Token": TOKEN})
    assert r.status_code == 404, r.text


# ----- authentication


def test_no_token_is_401():
    with pytest.raises(RuntimeError, match="Authentication failed") as e:
        make_client(token=None)
    cause = e.value.__cause__
    assert isinstance(cause, httpx.HTTPStatusError), repr(cause)
    assert cause.response.status_code == 401
    r = httpx.post(f"{URL}/submissions", json={"source_code": "print(1)", "language_id": PYTHON})
    assert r.status_code == 401, r.text
    assert "error" in r.json()


def test_wrong_token_is_401():
    with pytest.raises(RuntimeError, match="Authentication failed") as e:
        make_client(token="sl_" + "0" * 64)
    assert e.value.__cause__.response.status_code == 401
    r = httpx.get(f"{URL}/submissions/batch", params={"tokens": "x"}, headers={"X-Auth-Token": "wrong"})
    assert r.status_code == 401, r.text
