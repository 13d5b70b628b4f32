using Microsoft.Extensions.Options;
using QubesWeb.Data;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services;
using QubesWeb.Services.Demo;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Networks;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;
using QubesWeb.Services.Templates;

namespace QubesWeb.Hosting;

public static class ServiceExtensions
{
    /// <summary>Everything the console runs on: inventory, hypervisor, estate monitor, jobs and the start-up sequence.</summary>
    public static IServiceCollection AddQubesWeb(this IServiceCollection services, QubesWebOptions options)
    {
        services.AddSingleton(Options.Create(options));
        services.AddInventory(options.DatabasePath);
        services.Configure<HypervisorOptions>(o =>
        {
            o.Uri = options.EffectiveLibvirtUri;
            o.DomainType = options.DomainType;
        });
        services.AddSingleton<LibvirtHypervisor>();
        services.AddSingleton<IHypervisor>(sp => sp.GetRequiredService<LibvirtHypervisor>());
        services.Configure<EstateOptions>(o =>
        {
            o.PoolDir = options.PoolDir;
            o.IsDemo = options.IsDemo;
            o.DiskUsageInterval = options.DiskUsageInterval;
        });
        // "Networks:Uplink" (a libvirt network name) in any configuration source.
        services.AddOptions<NetworkOptions>().BindConfiguration("Networks")
            .Validate(o => NetworkOptions.IsValidUplink(o.Uplink), NetworkOptions.UplinkRule).ValidateOnStart();
        services.AddSingleton<DomainDefinitions>();
        // "FirstBoot:SshAuthorizedKey" and "FirstBoot:PasswordHash" in any configuration source.
        services.AddOptions<FirstBootOptions>().BindConfiguration("FirstBoot");
        services.AddSingleton<FirstBootSeeds>();
        services.AddSingleton<EstateMonitor>();
        services.AddSingleton<DemoEstate>();
        // "Lifecycle:ShutdownTimeout" (e.g. 00:01:00) in any configuration source.
        services.AddOptions<LifecycleOptions>().BindConfiguration("Lifecycle");
        foreach (var action in Enum.GetValues<LifecycleAction>())
            services.AddSingleton<IJobKind>(sp => ActivatorUtilities.CreateInstance<LifecycleJob>(sp, action));
        services.AddSingleton<CreateQubeJob>();
        services.AddSingleton<IJobKind>(sp => sp.GetRequiredService<CreateQubeJob>());
        services.AddSingleton<IJobKind, RemoveQubeJob>();
        services.AddSingleton<CloneQubeJob>();
        services.AddSingleton<IJobKind>(sp => sp.GetRequiredService<CloneQubeJob>());
        services.AddSingleton<VolumeUsage>();
        services.AddSingleton<ReleasedRevisions>();
        services.AddSingleton<RootLocks>();
        services.AddSingleton<RootMeasures>();
        services.AddSingleton<RootRetention>();
        services.AddSingleton<RootLifecycle>();
        services.AddSingleton<RootRevisions>();
        services.AddSingleton<RootCompaction>();
        services.AddSingleton<RootDetach>();
        services.AddSingleton<DetachCommands>();
        services.AddSingleton<PoolQueries>();
        services.AddSingleton<RootRecovery>();
        services.AddSingleton<IJobKind, CommitRootJob>();
        services.AddSingleton<IJobKind, RevertRootJob>();
        services.AddSingleton<IJobKind, CompactRootJob>();
        services.AddSingleton<IJobKind, DetachRootJob>();
        services.AddSingleton<RestartOutdatedJob>();
        services.AddSingleton<IJobKind>(sp => sp.GetRequiredService<RestartOutdatedJob>());
        services.AddSingleton<ImportTemplateJob>();
        services.AddSingleton<IJobKind>(sp => sp.GetRequiredService<ImportTemplateJob>());
        services.AddSingleton<IJobKind, Services.Disposables.LaunchDisposableJob>();
        services.AddSingleton<Services.Disposables.DisposableCommands>();
        // The pages' only way in: commands that change things, queries that read them.
        services.AddSingleton<QubeCommands>();
        services.AddSingleton<QubeQueries>();
        services.AddSingleton<Services.Consoles.SerialConsoles>();
        services.AddSingleton<Services.Consoles.GraphicalConsoles>();
        services.AddSingleton<Services.Consoles.QubeScreens>();
        services.AddSingleton<Services.Templates.TemplateCommands>();
        services.AddSingleton<Services.Templates.TemplateQueries>();
        services.AddSingleton<TaskQueries>();
        services.AddSingleton<TaskCommands>();
        // "Updates:Concurrency", "Updates:StaleAfter" etc. in any configuration source.
        services.AddOptions<Services.Updates.UpdateOptions>().BindConfiguration("Updates");
        services.AddSingleton<Services.Updates.Guests>();
        services.AddSingleton<Services.Updates.UpdateRunner>();
        services.AddSingleton<Services.Updates.TemplateUpdateNetwork>();
        services.AddSingleton<IJobKind, Services.Updates.UpdateJob>();
        services.AddSingleton<IJobKind, Services.Updates.CheckUpdatesJob>();
        services.AddScoped<CircuitJobs>();
        services.AddSingleton<IdleMemoryTrim>();
        services.AddScoped<Microsoft.AspNetCore.Components.Server.Circuits.CircuitHandler, IdleMemoryTrim.CircuitWatch>();
        services.AddScoped<Components.Pages.Updates.UpdatesPageMemory>();
        services.AddScoped<Components.Shared.BrowserStore>();

        // Hosted services start in this order: the estate is ready before jobs recover and run.
        services.AddHostedService<EstateStartup>();
        services.AddSingleton<JobEngine>();
        services.AddHostedService(sp => sp.GetRequiredService<JobEngine>());
        services.AddHostedService<RootVolumeEvents>();
        services.AddHostedService<Services.Disposables.DisposableCleanup>();
        services.AddHostedService<Services.Disposables.DisposablePreloader>();
        services.AddSingleton<InstallMedia>();
        services.AddHostedService(sp => sp.GetRequiredService<InstallMedia>());
        services.AddHostedService<DiskUsageRefresher>();
        services.AddHostedService<Services.Providers.ProviderClients>();
        return services;
    }
}
