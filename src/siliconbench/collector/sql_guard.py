"""What `sql` may run without --write, decided by ClickHouse's own parser: the statement's syntax tree
(`EXPLAIN AST`, which parses and runs nothing) is walked, and only reads of the store's database, of
system tables and of a few generators pass.

The tree is ClickHouse's text dump, one node a line, indented one space per level:

    SelectWithUnionQuery (children 1)
     ExpressionList (children 1)
      SelectQuery (children 2)
       ...
         TableExpression (children 1)
          Function file (children 1)

A function directly under a TableExpression (or under an InsertQuery) is a table function; a Literal
directly under a statement (SelectWithUnionQuery, Explain, ShowTables, DescribeQuery, ...) is its INTO
OUTFILE target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Statements that only read: a SELECT (with UNION/INTERSECT/EXCEPT), SHOW, DESCRIBE, EXISTS, EXPLAIN.
READING_STATEMENTS = ("SelectWithUnionQuery", "SelectIntersectExceptQuery", "Show", "DescribeQuery", "Exists",
                      "Explain")
# Table functions that read nothing outside the query itself: generators and `view(SELECT ...)`, whose
# SELECT is walked like any other.
GENERATORS = frozenset({"numbers", "numbers_mt", "zeros", "zeros_mt", "values", "generate_series",
                        "generateSeries", "view"})
# Ordinary functions that read outside the store: a file's content, a dictionary's source (which may be a
# file, a URL or another server), another table's Join state, a model file.
READING_FUNCTIONS = frozenset({"file", "joinGet", "joinGetOrNull", "catboostEvaluate"})
SYSTEM_DATABASES = frozenset({"system", "information_schema", "INFORMATION_SCHEMA"})
# `x IN t`: a bare name on the right of these is a table.
IN_FUNCTIONS = frozenset({"in", "notIn", "globalIn", "globalNotIn", "nullIn", "notNullIn", "globalNullIn",
                          "globalNotNullIn"})


@dataclass(slots=True)
class Node:
    kind: str                  # the parser's node type: SelectQuery, Function, TableIdentifier, ...
    name: str                  # what follows the type on its line (a function's or table's name), alias cut
    children: list[Node] = field(default_factory=list)


def parse_tree(lines: list[str]) -> Node:
    """The tree of an `EXPLAIN AST` dump (one node a line, one space of indent per level)."""
    root = Node("", "")
    path = [root]
    for line in lines:
        if not line.strip():
            continue
        text = line.lstrip(" ")
        depth = len(line) - len(text)
        text = text.rsplit(" (children ", 1)[0] if text.endswith(")") else text
        text = text.rsplit(" (alias ", 1)[0]
        kind, _, name = text.partition(" ")
        node = Node(kind, name)
        del path[depth + 1:]
        path[-1].children.append(node)
        path.append(node)
    return root


def refusal(statement: str, tree: Node, database: str) -> str | None:
    """Why the statement is not a read of the store (a short phrase), or None when it is one."""
    if len(tree.children) != 1:
        return "a text that is not exactly one statement"
    top = tree.children[0]
    if top.kind == "ParallelWithQuery":
        return "statements joined by PARALLEL WITH"
    if not top.kind.startswith(READING_STATEMENTS):
        return f"{statement.split(maxsplit=1)[0].upper()} (a statement other than SELECT, SHOW, DESCRIBE, EXISTS or EXPLAIN)"
    return _walk(top, None, database)


def _walk(node: Node, parent: Node | None, database: str) -> str | None:
    parent_kind = parent.kind if parent is not None else ""
    if node.kind == "InsertQuery":
        return "INSERT"
    if node.kind == "Literal" and parent_kind.startswith(READING_STATEMENTS):
        return "INTO OUTFILE (it writes a file)"
    if node.kind == "Function" and parent_kind == "TableExpression":
        if node.name not in GENERATORS and not _in_store(node.name, database):
            return f"the table function {node.name}() (it reads outside the store)"
    elif node.kind == "Function" and (node.name in READING_FUNCTIONS or node.name.startswith("dict")):
        return f"the function {node.name}() (it reads outside the store)"
    if node.kind == "TableIdentifier" and not _readable_table(node.name, database):
        return f"the table {node.name} (only {database}.* and system tables are read)"
    if node.kind == "Function" and node.name in IN_FUNCTIONS and node.children:
        operands = node.children[0].children
        if len(operands) == 2 and operands[1].kind == "Identifier" and not _readable_table(operands[1].name, database):
            return f"the table {operands[1].name} (only {database}.* and system tables are read)"
    for child in node.children:
        if (why := _walk(child, node, database)) is not None:
            return why
    return None


def _in_store(name: str, database: str) -> bool:
    """`name` is database.object in the store's database (a table, a view, a parameterized view)."""
    qualifier, dot, rest = name.partition(".")
    return bool(dot) and qualifier == database and _plain(rest)


def _readable_table(name: str, database: str) -> bool:
    """A table of the store, a system table, or an unqualified name (a WITH clause's name, or a table of
    the connection's own database). A name the dump cannot show unambiguously (a quoted one holding a
    dot or a space) is refused."""
    if _plain(name):
        return True
    qualifier, _, rest = name.partition(".")
    return (qualifier == database or qualifier in SYSTEM_DATABASES) and _plain(rest)


def _plain(name: str) -> bool:
    return bool(name) and "." not in name and " " not in name
