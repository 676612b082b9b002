"""Sarus's option grammar (eth-cscs/sarus, C++ + boost::program_options), as pure data.

Only one property of each option matters here: whether it consumes the next
argv element. Sarus does not hand argv to boost directly: it first splits it
itself, and that split decides where the image is.

Every set holds option spellings without dashes: long names, and one-letter
strings for short options. The sets are the union over Sarus 1.3 .. 1.7.x
(the versions with the parser described below); hidden options are included.

How Sarus splits argv (src/cli/Utility.cpp ``groupOptionsAndPositionalArguments``)
--------------------------------------------------------------------------------
The same function runs twice: once in CLI.cpp over the whole argv with the
global options, then in each command over the words from the command name on,
with that command's options. It walks the words after the first one:

* A word "is an option" when it is ``-X...`` (length > 1, second character not
  ``-``) or ``--X...`` (length > 2, third character not ``-``). Everything
  else -- a word not starting with ``-``, a lone ``-``, a bare ``--``, or
  ``---x`` -- is a positional.
* The first positional ends the options: it and every word after it form the
  positional group. For the global pass that word is the command name; for
  ``run`` it is the image, and everything after it is the container's command
  (so an option after the image is passed to the container, not to Sarus);
  for ``pull`` exactly one positional is allowed, so an option after the image
  is "Too many arguments".
* **A bare ``--`` is not an end-of-options marker: it is a positional, i.e.
  it is taken as the command name (global pass) or as the image.** Never
  insert one.
* ``--name=value`` (any word with ``=``): kept whole; no next word consumed.
* ``--name`` without ``=``: the name is looked up exactly (``find_nothrow(name,
  false)``, no abbreviation). A known option that takes a value consumes the
  next word **unless that word is a single-dash option word** (``-x...``). The
  next word IS consumed when it is anything else, including ``--other``,
  ``--``, ``-`` and the empty string: ``--workdir --tty img`` takes
  ``--tty`` as the work directory (boost then accepts or rejects it).
  An unknown ``--name`` consumes nothing; boost reports it afterwards.
* ``-abc``: the letters are looked up one by one. Bool options may be bundled
  ("sticky": ``-tm``). The first letter that takes a value takes the rest of
  the word if any is left (``-w/dir``), else the next word under the same
  rule as above. An unknown letter ends the word, which boost then rejects.
* The options group is then parsed by boost with ``unix_style``, which allows
  unambiguous abbreviations of long options (``--cent`` for
  ``--centralized-repository``). The split above does not know abbreviations:
  an abbreviated option that takes a value works only as ``--abbrev=value``;
  ``--abbrev value`` makes ``value`` the image and boost then complains that
  the value is missing. Abbreviated bools work. A scanner that, like Sarus's
  own split, treats an unknown ``--word`` as taking no value finds the same
  image.

Corrections to the summary in the runtime-CLI notes: "a value option takes
the next token only if it does not start with '-'" is too broad -- only a
single-dash option word is refused; ``--x``, ``--``, ``-`` and ``""`` are
taken as values. "The first token not starting with '-' is the image" holds
only for words not consumed as values, and a lone ``-``, a bare ``--`` and
``---x`` are positionals too.

Version notes (CHANGELOG.md): before 1.3.0 the CLI split argv into a new group
at *every* non-option word (CLI.cpp ``groupArgumentsAndCorrespondingOptions``
@e595c3f6), so ``--mount SPEC img`` made SPEC the image; 1.3.0 "fixed
detection of option values separated by whitespace" and allowed options
after the image to reach the container. Options were added in: 1.1.0
``--workdir``; 1.2.0 ``--glibc``; 1.4.0 ``-e/--env``, ``--device``,
``--pid``; 1.5.0 ``pull --username/--password-stdin``, ``images
--digests``, pulling by digest (``name:tag@sha256:...`` -- the tag is then
ignored); 1.6.0 ``--annotation``, ``--mpi-type``, ``sarus hooks``; 1.7.0
``-n/--name``, ``sarus ps``, ``sarus kill``. Sarus 1.0 declared
``--entrypoint`` with ``implicit_value("")`` (a bare ``--entrypoint``
cleared it); current versions need a value: ``--entrypoint ""`` (boost
rejects the empty adjacent ``--entrypoint=``), split on whitespace, not
parsed as JSON.

``sarus run`` only runs images already in the local (or, with
``--centralized-repository``, the centralized) repository and normalizes the
reference the way Docker does; ``sarus pull`` fetches from a registry
(``docker`` transport via Skopeo), or with the hidden
``--containers-storage`` from a local containers/storage store. The
commands define no ``--help`` option (``sarus help CMD`` prints a command's
help; a global ``--help`` prints the general one). No environment variable
setting a CLI option was found in these sources (site settings live in
sarus.json).

Sources read (search index of public repositories):

- eth-cscs/sarus:src/cli/Utility.cpp @9adfeb95 (copyright 2018-2022:
  ``groupOptionsAndPositionalArguments``, ``processDashDashOption``,
  ``processDashOption``, ``processPossibleValueInNextToken``,
  ``hasDashPrefix``, ``isOption``).
- eth-cscs/sarus:src/cli/CLI.cpp, 2018-2021 revision (global options
  ``help version debug verbose``; ``unix_style``; command name = first
  positional) and the 2018-2019 revision @e595c3f6 (pre-1.3 grouping).
- eth-cscs/sarus:src/cli/CommandRun.hpp, 2018-2023 revision (libsarus,
  1.6/1.7: the run options below) and @5cb49b6d (1.0: ``--entrypoint`` with
  ``implicit_value``).
- eth-cscs/sarus:src/cli/CommandPull.hpp, libsarus revision (visible
  ``--temp-dir --login --password-stdin -u/--username
  --centralized-repository``, hidden ``--containers-storage``; exactly one
  positional).
- eth-cscs/sarus:src/cli/CommandImages.hpp @e3c187e3, CommandHooks.hpp
  @b2238c48, CommandSshKeygen.hpp @ce46bc2a, CommandKill.hpp @f39e22e1,
  CommandObjectsFactory.cpp @05e35e94 (command names), CHANGELOG.md
  @005e4f49, and the 1.7.0 release notes (docs corpus).
- Not cross-checked against a binary: Sarus cannot be installed here.

Standard library only; no imports.
"""

# --------------------------------------------------------------------------
# 1. Global options: before the command name. All long-only bools.
# --------------------------------------------------------------------------

GLOBAL_VALUE: frozenset[str] = frozenset()

GLOBAL_BOOL: frozenset[str] = frozenset(
    {
        "debug",  # log level DEBUG
        "help",  # overrides everything: prints the general help
        "verbose",  # log level INFO
        "version",  # overrides everything except --help
    }
)

# --------------------------------------------------------------------------
# 2. sarus run [OPTIONS] REPOSITORY[:TAG][@DIGEST] [COMMAND] [ARG...]
# --------------------------------------------------------------------------

RUN_VALUE: frozenset[str] = frozenset(
    {
        "annotation",  # 1.6.0; repeatable KEY=VALUE
        "device",  # 1.4.0; repeatable
        "e",  # --env (1.4.0)
        "entrypoint",  # "" clears it; split on whitespace
        "env",
        "mount",  # repeatable; type=bind,src=...,dst=...
        "mpi-type",  # 1.6.0; implies --mpi and --glibc
        "n",  # --name (1.7.0)
        "name",
        "pid",  # 1.4.0; "host" | "private"
        "w",  # --workdir
        "workdir",  # 1.1.0; must be absolute
    }
)

RUN_BOOL: frozenset[str] = frozenset(
    {
        "centralized-repository",
        "glibc",  # 1.2.0
        "init",
        "m",  # --mpi
        "mpi",  # implies --glibc
        "ssh",  # implies --pid=private
        "t",  # --tty
        "tty",
    }
)

# --------------------------------------------------------------------------
# 3. sarus pull [OPTIONS] REPOSITORY[:TAG][@DIGEST]  (exactly one positional;
#    options must come before it)
# --------------------------------------------------------------------------

PULL_VALUE: frozenset[str] = frozenset(
    {
        "temp-dir",
        "u",  # --username (1.5.0)
        "username",
    }
)

PULL_BOOL: frozenset[str] = frozenset(
    {
        "centralized-repository",
        "containers-storage",  # hidden: pull from local containers/storage
        "login",  # prompts for username and password on stdin
        "password-stdin",  # 1.5.0; reads the password from stdin
    }
)

# --------------------------------------------------------------------------
# 4. The other commands.
# --------------------------------------------------------------------------

IMAGES_VALUE: frozenset[str] = frozenset()
IMAGES_BOOL: frozenset[str] = frozenset({"centralized-repository", "digests"})  # --digests: 1.5.0

RMI_VALUE: frozenset[str] = frozenset()  # sarus rmi [OPTIONS] IMAGE
RMI_BOOL: frozenset[str] = frozenset({"centralized-repository"})

LOAD_VALUE: frozenset[str] = frozenset({"temp-dir"})  # sarus load [OPTIONS] FILE IMAGE
LOAD_BOOL: frozenset[str] = frozenset({"centralized-repository"})

HOOKS_VALUE: frozenset[str] = frozenset()
HOOKS_BOOL: frozenset[str] = frozenset({"m", "mpi"})  # sarus hooks [--mpi] (1.6.0)

SSH_KEYGEN_VALUE: frozenset[str] = frozenset()
SSH_KEYGEN_BOOL: frozenset[str] = frozenset({"overwrite"})

# help, version, ps (1.7.0), kill NAME (1.7.0): no options.

# --------------------------------------------------------------------------
# 5. Command words (CommandObjectsFactory).
# --------------------------------------------------------------------------

# No aliases and no abbreviations of command names: an unknown word is
# "'X' is not a Sarus command".
SUBCOMMANDS: frozenset[str] = frozenset(
    {
        "help",  # `sarus help CMD` prints CMD's help
        "hooks",  # 1.6.0
        "images",
        "kill",  # 1.7.0
        "load",
        "ps",  # 1.7.0
        "pull",
        "rmi",
        "run",
        "ssh-keygen",
        "version",
    }
)

# Commands that take an image operand, with its index among the command's
# positionals.
IMAGE_POSITION: dict[str, int] = {
    "load": 1,  # FILE IMAGE: the name to store the archive under
    "pull": 0,
    "rmi": 0,
    "run": 0,
}

# Per-command option sets, for a scanner that looks a command up by name.
COMMAND_FLAGS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "help": (frozenset(), frozenset()),
    "hooks": (HOOKS_VALUE, HOOKS_BOOL),
    "images": (IMAGES_VALUE, IMAGES_BOOL),
    "kill": (frozenset(), frozenset()),
    "load": (LOAD_VALUE, LOAD_BOOL),
    "ps": (frozenset(), frozenset()),
    "pull": (PULL_VALUE, PULL_BOOL),
    "rmi": (RMI_VALUE, RMI_BOOL),
    "run": (RUN_VALUE, RUN_BOOL),
    "ssh-keygen": (SSH_KEYGEN_VALUE, SSH_KEYGEN_BOOL),
    "version": (frozenset(), frozenset()),
}
