using QubesWeb.Data.Jobs;

namespace QubesWeb.Services.Jobs;

/// <summary>
/// A kind of job, by the name the jobs table keeps. Every kind the console runs is listed here, so a caller names a
/// kind with a value the compiler checks, and this file is the only place where a kind's stored name is written.
/// </summary>
public readonly struct JobKind(string name) : IEquatable<JobKind>
{
    /// <summary>The kind's name as the jobs table keeps it.</summary>
    public string Name { get; } = name;

    public static readonly JobKind Start = new("start");
    public static readonly JobKind Shutdown = new("shutdown");
    public static readonly JobKind Kill = new("kill");
    public static readonly JobKind Pause = new("pause");
    public static readonly JobKind Resume = new("resume");
    public static readonly JobKind Restart = new("restart");
    public static readonly JobKind Create = new("create");
    public static readonly JobKind Clone = new("clone");
    public static readonly JobKind Remove = new("remove");
    public static readonly JobKind Commit = new("commit");
    public static readonly JobKind Revert = new("revert");
    public static readonly JobKind Compact = new("compact");
    public static readonly JobKind Detach = new("detach");
    public static readonly JobKind RestartOutdated = new("restart-outdated");
    public static readonly JobKind Update = new("update");
    public static readonly JobKind CheckUpdates = new("check-updates");
    public static readonly JobKind Import = new("import");
    public static readonly JobKind LaunchDisposable = new("launch-disposable");

    /// <summary>Whether <paramref name="job"/> is of this kind.</summary>
    public bool Is(Job job) => job.Kind == Name;

    public override string ToString() => Name;

    public bool Equals(JobKind other) => string.Equals(Name, other.Name, StringComparison.Ordinal);
    public override bool Equals(object? obj) => obj is JobKind other && Equals(other);
    public override int GetHashCode() => Name is null ? 0 : StringComparer.Ordinal.GetHashCode(Name);
    public static bool operator ==(JobKind a, JobKind b) => a.Equals(b);
    public static bool operator !=(JobKind a, JobKind b) => !a.Equals(b);
}
