"""A LangGraph agent whose checkpoints live in ctxstore: resume a thread, look at its history,
copy it (a fork), and keep the chat history and the checkpoints of one thread together.

    CTXSTORE_DSN="dbname=app user=agent_app" python examples/langgraph_checkpointer.py
"""

import os
import uuid

import psycopg
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.graph import START, MessagesState, StateGraph

from ctxstore.checkpoint import CtxstoreSaver

model = FakeListChatModel(responses=["Hello Ada!", "You said your name is Ada."])


def chat(state: MessagesState) -> dict:
    return {"messages": [model.invoke(state["messages"])]}


builder = StateGraph(MessagesState)
builder.add_node("chat", chat)
builder.add_edge(START, "chat")

with psycopg.connect(os.environ["CTXSTORE_DSN"], autocommit=True) as conn:
    saver = CtxstoreSaver(conn)
    graph = builder.compile(checkpointer=saver)
    thread = f"agent-{uuid.uuid4()}"
    config = {"configurable": {"thread_id": thread}}
    graph.invoke({"messages": [("user", "I am Ada")]}, config)
    state = graph.invoke({"messages": [("user", "What is my name?")]}, config)
    print([m.content for m in state["messages"]])
    print(len(list(graph.get_state_history(config))), "checkpoints")

    saver.copy_thread(thread, thread + "-copy")  # a fork of the thread's context
    copy = graph.get_state({"configurable": {"thread_id": thread + "-copy"}})
    print("copy has", len(copy.values["messages"]), "messages")
    saver.prune([thread], strategy="keep_latest")
    print(len(list(graph.get_state_history(config))), "checkpoint after pruning")
