namespace QubesWeb;

/// <summary>
/// Something the user asked for was refused or could not be done, and the message says why and what to fix, in words
/// fit to show as they are. Every user-facing failure (a Qubes rule, a busy qube, the hypervisor, storage) derives
/// from it, so a page shows a refusal with one catch and lets anything else surface as a fault. It lives in the
/// lowest project so that the binding's own refusals can derive from it.
/// </summary>
public abstract class RefusalException(string message, Exception? inner = null) : Exception(message, inner);
