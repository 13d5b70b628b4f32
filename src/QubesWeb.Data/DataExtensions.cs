using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using QubesWeb.Data.Qubes;

namespace QubesWeb.Data;

public static class DataExtensions
{
    public const string MigrationsAssembly = "QubesWeb.Migrations";

    /// <summary>The inventory on a SQLite file: a DbContext factory (one short-lived context per operation).</summary>
    public static IServiceCollection AddInventory(this IServiceCollection services, string databasePath)
    {
        // Pooled: every inventory access makes a short-lived context, and building one cost more than many queries.
        // One write counter per database: a console's shared reads are not thrown away by another's writes.
        var writes = new InventoryWrites();
        services.AddSingleton(writes);
        services.AddPooledDbContextFactory<InventoryDbContext>(o => Configure(o, databasePath, writes));
        services.AddSingleton<Inventory>();
        return services;
    }

    /// <param name="writes">counts this database's writes for the shared reads; a context made outside the console's
    /// services (a tool, a test opening the file) needs none.</param>
    public static void Configure(DbContextOptionsBuilder o, string databasePath, InventoryWrites? writes = null)
    {
        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            // Microsoft.Data.Sqlite retries SQLITE_BUSY until this many seconds pass: a writer waits, it does not fail.
            DefaultTimeout = 30,
            Pooling = true,
        }.ToString();
        // One query per load, said explicitly: a qube's collections (volumes, features) are a few rows each, and
        // unset, EF warns about it in the console's log at every start.
        o.UseSqlite(cs, s => s.MigrationsAssembly(MigrationsAssembly).UseQuerySplittingBehavior(QuerySplittingBehavior.SingleQuery));
        o.AddInterceptors(SqlitePragmas.Instance);
        if (writes is not null) o.AddInterceptors(writes);
    }

    /// <summary>
    /// WAL lets the UI read while a job writes. synchronous=FULL because losing the last committed job state on a
    /// power cut is worse than the few ms a commit costs here (see ../shared/notes/security.md).
    /// </summary>
    private sealed class SqlitePragmas : DbConnectionInterceptor
    {
        public static readonly SqlitePragmas Instance = new();
        private const string Sql = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON;";

        // EF Core's Database.Exists() (run by MigrateAsync) opens a read-only connection when the file exists; switching
        // an existing non-WAL file (e.g. one made empty and owner-only before the first migration) to WAL would have to
        // write, so such a connection gets only the per-connection pragmas.
        private const string ReadOnlySql = "PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON;";

        // Pragmas hold for the life of SQLite's connection, and the pool hands the same one out again: they run once per
        // physical connection, not at every open (each query opens one), which took a few ms off every inventory access.
        private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, object> Prepared = new();

        private static string? SqlFor(DbConnection connection)
        {
            if (connection is not SqliteConnection c) return Sql;
            if (c.Handle is { } handle && Prepared.TryGetValue(handle, out _)) return null;
            return new SqliteConnectionStringBuilder(c.ConnectionString).Mode == SqliteOpenMode.ReadOnly ? ReadOnlySql : Sql;
        }

        private static void Done(DbConnection connection)
        {
            if (connection is SqliteConnection { Handle: { } handle }) Prepared.AddOrUpdate(handle, handle);
        }

        public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData)
        {
            if (SqlFor(connection) is not { } sql) return;
            using var cmd = connection.CreateCommand();
            cmd.CommandText = sql;
            cmd.ExecuteNonQuery();
            Done(connection);
        }

        public override async Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken ct = default)
        {
            if (SqlFor(connection) is not { } sql) return;
            await using var cmd = connection.CreateCommand();
            cmd.CommandText = sql;
            await cmd.ExecuteNonQueryAsync(ct);
            Done(connection);
        }
    }
}
