namespace QubesWeb.Services;

/// <summary>
/// Where the estate's files live and how the services behave, as the host configured them. The services read these,
/// never the host's own options, so they do not depend on the web host.
/// </summary>
public sealed class EstateOptions
{
    /// <summary>The pool: one folder per qube holding its volumes.</summary>
    public string PoolDir { get; set; } = "";

    /// <summary>The console runs on its embedded demo: what only a real guest can do is simulated, and said so.</summary>
    public bool IsDemo { get; set; }

    /// <summary>How often disk usage is measured when nothing else asks for it.</summary>
    public TimeSpan DiskUsageInterval { get; set; } = TimeSpan.FromMinutes(1);
}
