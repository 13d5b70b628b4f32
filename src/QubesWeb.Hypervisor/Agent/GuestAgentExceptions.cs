namespace QubesWeb.Hypervisor.Agent;

/// <summary>
/// The guest agent answered a command with an error. <see cref="ErrorClass"/> and <see cref="Description"/> are the
/// agent's own <c>class</c> and <c>desc</c>; through libvirt the class is not passed on and is null.
/// </summary>
public sealed class GuestAgentException : Exception
{
    public GuestAgentException(string command, string? errorClass, string description)
        : this(command, errorClass, description,
            $"The guest agent refused {command}: {description}{(errorClass is null ? "" : $" ({errorClass})")}")
    {
    }

    public GuestAgentException(string command, string? errorClass, string description, string message,
        Exception? inner = null) : base(message, inner)
    {
        Command = command;
        ErrorClass = errorClass;
        Description = description;
    }

    /// <summary>The command that failed, e.g. <c>guest-exec</c>.</summary>
    public string Command { get; }

    /// <summary>QMP error class, e.g. <c>GenericError</c>, <c>CommandNotFound</c>, <c>CommandDisabled</c>.</summary>
    public string? ErrorClass { get; }

    public string Description { get; }
}

/// <summary>
/// The guest agent cannot be reached: no socket or connection, the connection dropped, the domain is not running, its
/// agent is not connected, or the libvirt driver cannot talk to guest agents at all.
/// </summary>
public sealed class GuestAgentUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// A program started by <see cref="GuestAgent.RunAsync"/> did not finish in time. <see cref="Killed"/> tells whether it
/// was then killed; when false it may still be running in the guest.
/// </summary>
public sealed class GuestExecTimeoutException(string path, long pid, TimeSpan timeout, bool killed)
    : TimeoutException($"{path} (guest pid {pid}) did not finish within {GuestAgent.Describe(timeout)}; " +
        (killed ? "it was killed." : "it could not be killed and may still be running in the guest."))
{
    public string Path { get; } = path;
    public long Pid { get; } = pid;
    public TimeSpan Timeout { get; } = timeout;
    public bool Killed { get; } = killed;
}
