"""`python -m assistant chat`: the conversational illustrator in a terminal, one line per message.

Reads standard input (a terminal or a pipe), prints each reply and the image path it shows;
`/new`, `/history`, `/help` and `/quit` steer it. Conversations are stored in the home folder,
so `--resume ID` carries on where one stopped and `--list` shows them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .workflows.service import AUTO_RULE, ENGINES
from imagegen.presets import QUALITIES

from .cli_common import catalog_from_args, catalog_parser
from .models import LLM_ENV, LLMS

COMMANDS = (
    ("/new", "start a new conversation"),
    ("/history", "this conversation's turns so far"),
    ("/help", "what to say, and these commands"),
    ("/quit", "leave (the conversation is saved; --resume ID carries on)"),
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    c = subparsers.add_parser(
        "chat",
        help="the conversational illustrator: draw the show's key art and refine it in a chat",
        description=(
            "Chat with the illustrator: \"draw season 1 episode 3 as a watercolor\", then \"darker\", \"in anime style\", "
            "\"wider\", \"another one\", \"use seed 1234\", \"undo\"; or ask \"who is Mara Quill?\". One message a line; "
            "commands: " + ", ".join(name for name, _ in COMMANDS) + "."
        ),
        parents=[catalog_parser()],
    )
    c.add_argument("--llm", choices=LLMS, help=f"language model (default: {LLM_ENV}, else offline); openai uses tool calling")
    c.add_argument("--engine", choices=ENGINES, help=f"image engine: {', '.join(ENGINES)}; auto is {AUTO_RULE} (default: KEYART_ENGINE, else auto)")
    c.add_argument("--quality", choices=QUALITIES, default="final", help="render preset (default: final, as the catalog's art)")
    c.add_argument("--home", type=Path, help="catalog home folder: conversations and chat images live there (default: KEYART_HOME, else data/home)")
    c.add_argument("--resume", metavar="ID", help="carry on a stored conversation")
    c.add_argument("--list", action="store_true", help="list the stored conversations and exit")
    c.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    return c


def run(args: argparse.Namespace, settings) -> int:
    from .cli_common import echo

    from .conversations import Conversations
    from .models import label
    from .policy import check_blocklist
    from .store import check_home
    from .workflows.illustrator import Illustrator
    from .workflows.plan import RenderSettings

    # 1. Listing and an unknown --resume need only the conversations, read without creating them.
    home = settings.home_path
    if args.list:
        listed = Conversations(home, create=False).listing()
        if not listed:
            echo("no conversations yet; start one with: python -m assistant chat")
        for c in listed:
            echo(f"{c.id}  {c.updated}  {c.turns:3d} turns  {c.show}  {c.title}")
        return 0
    if args.resume:
        Conversations(home, create=False).get(args.resume)
    # 2. Everything a turn reads, checked before conversations.sqlite is written: the catalog, the
    # blocklist, the home and its catalog store.
    catalog = catalog_from_args(args)
    check_blocklist()
    check_home(home)
    model = settings.language_model()
    slot = settings.render_service(front="chat")
    illustrator = Illustrator(catalog, model, home=home, slot=slot, settings=RenderSettings(quality=args.quality))
    # 3. The conversation: the one resumed, or a new one.
    if args.resume:
        conversation = illustrator.conversations.get(args.resume).id
        echo(f"resumed conversation {conversation} of {catalog.show} at turn {illustrator.conversations.next_turn(conversation)}: {illustrator.state(conversation).summary()}")
    else:
        conversation = illustrator.start()
        echo(f"conversation {conversation} of {catalog.show}")
    echo(f"language model: {label(model)}; engine: {slot.name} ({slot.reason}). /help for help, /quit to leave.")
    # 4. One line, one turn, until /quit or the end of the input.
    interactive = sys.stdin.isatty()
    try:
        while True:
            if interactive:
                sys.stdout.write("you> ")
                sys.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                command = text.split()[0].lower()
                if command in ("/quit", "/exit"):
                    break
                conversation = _command(command, illustrator, conversation, echo)
                continue
            _turn(illustrator, conversation, text, echo)
    except KeyboardInterrupt:
        echo(f"\nconversation {conversation} is saved; carry on with: python -m assistant chat --resume {conversation}")
        return 130
    echo(f"conversation {conversation} is saved; carry on with: python -m assistant chat --resume {conversation}")
    return 0


def _turn(illustrator, conversation: str, text: str, echo) -> None:
    from imagegen.errors import KeyartError

    try:
        reply = illustrator.turn(conversation, text)
    except KeyartError as exc:  # a render that failed, an unreadable home: said, and the chat goes on
        echo(f"error: {exc}")
        return
    for i, line in enumerate(reply.text.splitlines()):
        echo(("keyart> " if i == 0 else "        ") + line)
    if reply.image is not None:
        echo(f"image: {reply.image}")


def _command(command: str, illustrator, conversation: str, echo) -> str:
    """Run a /command; the conversation to carry on with (a new one after /new)."""
    if command == "/new":
        conversation = illustrator.start()
        echo(f"conversation {conversation} of {illustrator.catalog.show}")
    elif command == "/history":
        turns = illustrator.conversations.turns(conversation)
        if not turns:
            echo("no turns yet")
        for t in turns:
            echo(f"[{t.turn}] you: {t.user}")
            echo(f"    keyart: {t.reply.splitlines()[0] if t.reply else ''}" + (f"  ({t.image})" if t.image else ""))
    elif command == "/help":
        from .prompting.intents import HELP

        first = illustrator.index.characters[0].name if illustrator.index.characters else "the main character"
        echo(HELP.format(show=illustrator.catalog.show, character=first))
        for name, what in COMMANDS:
            echo(f"  {name:9s} {what}")
    else:
        echo(f"unknown command {command}; commands: {', '.join(name for name, _ in COMMANDS)}")
    return conversation
