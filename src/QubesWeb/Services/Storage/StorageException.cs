namespace QubesWeb.Services.Storage;

/// <summary>A storage step failed; the message says what state the qube was left in.</summary>
public sealed class StorageException(string message, Exception? inner = null) : RefusalException(message, inner);
