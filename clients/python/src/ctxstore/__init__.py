"""ctxstore adapters for LangChain and LangGraph.

    from ctxstore.chat_history import CtxstoreChatMessageHistory
    from ctxstore.vectorstores import CtxstoreVectorStore
    from ctxstore.storage import CtxstoreByteStore
    from ctxstore.cache import CtxstoreCache
    from ctxstore.store import CtxstoreStore                      # needs langgraph
    from ctxstore.checkpoint import CtxstoreSaver, AsyncCtxstoreSaver  # needs langgraph-checkpoint
"""

__version__ = "0.2.0"
