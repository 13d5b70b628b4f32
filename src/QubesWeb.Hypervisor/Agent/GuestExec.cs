namespace QubesWeb.Hypervisor.Agent;

/// <summary>One <c>guest-exec-status</c> answer. The output is the bytes the agent returned, decoded as UTF-8 (invalid
/// sequences become U+FFFD); qemu-ga returns it only once the process has exited, and forgets the process then, so
/// a later status of the same pid fails.</summary>
/// <param name="ExitCode">Set when the process exited normally.</param>
/// <param name="Signal">Set when a signal ended it (9 after a kill).</param>
/// <param name="OutTruncated">The agent kept only the first part of stdout (qemu-ga: 16 MiB per stream).</param>
public sealed record GuestExecStatus(
    bool Exited, int? ExitCode, int? Signal, string StdOut, string StdErr, bool OutTruncated, bool ErrTruncated);

/// <summary>A program <see cref="GuestAgent.RunAsync"/> ran to its end.</summary>
/// <param name="DroppedBytes">Output bytes past the run's limit, neither decoded nor kept.</param>
public sealed record GuestExecResult(
    long Pid, int? ExitCode, int? Signal, string StdOut, string StdErr, bool OutTruncated, bool ErrTruncated, long DroppedBytes = 0)
{
    public bool Succeeded => ExitCode == 0;
}

public enum GuestOutputStream
{
    StdOut,
    StdErr,
}

/// <summary>Output as <see cref="GuestAgent.RunAsync"/> receives it.</summary>
public readonly record struct GuestOutputChunk(GuestOutputStream Stream, string Text);

/// <summary>The <c>mode</c> of <c>guest-shutdown</c>.</summary>
public enum GuestShutdownMode
{
    /// <summary><c>powerdown</c>: the guest powers off (the default).</summary>
    PowerDown,
    /// <summary><c>reboot</c></summary>
    Reboot,
    /// <summary><c>halt</c>: the guest stops without powering off.</summary>
    Halt,
}
